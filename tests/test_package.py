"""The package as users get it: one import package, `lstm_edge`, in a wheel; an edge-only install (what
a Raspberry Pi gets: no TensorFlow) that classifies and says what the training commands need; a
user's own files in the working folder that take nothing over; and the imports between modules
pointing one way (train -> edge, export -> train and edge; edge -> nothing of ours)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import EXPECTED_RUNTIMES, ROOT, run_cli

EXAMPLES = ROOT / "examples" / "digits"
STAGES = ("edge", "train", "export")  # repository folders, imported as lstm_edge.<stage>
GENERIC = ("edge", "train", "export", "benchmarks", "tests")  # top-level names that must never be installed
USER_FILES = ("edge.py", "train.py", "export.py", "lstm_edge.py")


# -- the wheel ------------------------------------------------------------------------------------


def test_the_wheel_installs_lstm_edge_alone(edge_wheel):
    with zipfile.ZipFile(edge_wheel) as wheel:
        names = wheel.namelist()
        info = next(n.rsplit("/", 1)[0] for n in names if n.endswith(".dist-info/METADATA"))
        top_level = {n.split("/")[0] for n in names} - {info}
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert top_level == {"lstm_edge"}
    assert {n.split("/")[1] for n in names if n.startswith("lstm_edge/") and n.count("/") == 2} == set(STAGES)
    for script, target in (("lstm-edge", "lstm_edge.train.cli:main"), ("edge-classify", "lstm_edge.edge.cli:"),
                           ("edge-doctor", "lstm_edge.edge.cli:"), ("edge-bench", "lstm_edge.edge.cli:")):
        assert f"{script} = {target}" in entry_points
    assert not any(n.startswith(("lstm_edge/benchmarks", "lstm_edge/tests")) for n in names)


# -- an edge-only install -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def edge_only(edge_wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel pip-installed as a Pi gets it (numpy, Pillow, click, LiteRT; no
    TensorFlow): its bin folder."""
    venv = tmp_path_factory.mktemp("edge-only") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", str(edge_wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return venv / "bin"


def user_run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """A command as a user's shell runs it: their environment, no PYTHONPATH of ours."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


def test_edge_only_install_imports_the_api_without_tensorflow(edge_only, tmp_path):
    probe = ("import importlib.util, sys; from lstm_edge import DigitClassifier, Prediction, NumberReading; "
             "print(importlib.util.find_spec('tensorflow') is None, "
             "[m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'train', 'export', 'edge')])")
    done = user_run([str(edge_only / "python"), "-c", probe], tmp_path)
    assert done.returncode == 0 and done.stdout.split() == ["True", "[]"], done.stderr


@pytest.mark.parametrize("command", [("train",), ("evaluate", "runs/x"), ("export", "runs/x")])
def test_training_commands_in_an_edge_only_install_say_what_to_install(edge_only, tmp_path, command):
    done = user_run([str(edge_only / "lstm-edge"), *command], tmp_path)
    assert done.returncode == 2 and not done.stdout
    assert done.stderr.splitlines() == [f"Error: lstm-edge {command[0]} needs TensorFlow: "
                                        "pip install 'lstm-edge[train]'"]


def test_edge_only_install_classifies_and_self_tests(edge_only, int8_model, tmp_path):
    done = user_run([str(edge_only / "edge-classify"), str(EXAMPLES), "--model", str(int8_model), "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == len(list(EXAMPLES.iterdir())) and all(r["runtime"].startswith("litert ") for r in rows)
    doctor = user_run([str(edge_only / "edge-doctor"), "--model", str(int8_model), "--json"], tmp_path)
    assert doctor.returncode == 0 and json.loads(doctor.stdout)["ok"], doctor.stdout


# -- the user's own files -------------------------------------------------------------------------


@pytest.fixture
def user_folder(tmp_path) -> Path:
    """A working folder holding the user's own modules with our stages' names: importing any is a failure."""
    for name in USER_FILES:
        (tmp_path / name).write_text(f"raise SystemExit('the user\\'s own {name} was imported')\n")
    return tmp_path


def console_script(name: str) -> Path:
    script = Path(sys.executable).with_name(name)
    if not script.exists():
        pytest.skip(f"no {name} console script beside {sys.executable} (make test installs them)")
    return script


def test_export_and_classify_from_a_folder_with_the_users_own_modules(trained_run, user_folder):
    done = user_run([str(console_script("lstm-edge")), "export", str(trained_run), "--out", "m.tflite"], user_folder)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((user_folder / "m.json").read_text())
    assert {c["runtime"] for c in manifest["parity"]["verified_on"]} == set(EXPECTED_RUNTIMES)
    done = user_run([str(console_script("edge-classify")), str(EXAMPLES), "--model", "m.tflite"], user_folder)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == len(list(EXAMPLES.iterdir())), done.stderr


def test_edge_only_classify_from_a_folder_with_the_users_own_modules(edge_only, int8_model, user_folder):
    done = user_run([str(edge_only / "edge-classify"), str(EXAMPLES), "--model", str(int8_model)], user_folder)
    assert done.returncode == 0 and len(done.stdout.splitlines()) == len(list(EXAMPLES.iterdir())), done.stderr


# -- the imports between modules ------------------------------------------------------------------


def our_modules() -> dict[str, Path]:
    """lstm_edge's module names -> their files, as the wheel maps the repository's folders."""
    modules = {"lstm_edge": ROOT / "lstm_edge" / "__init__.py"}
    for stage in STAGES:
        for path in sorted((ROOT / stage).glob("*.py")):
            name = f"lstm_edge.{stage}" if path.stem == "__init__" else f"lstm_edge.{stage}.{path.stem}"
            modules[name] = path
    return modules


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module `path` imports, anywhere in it (functions too), by absolute name."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known}
    ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}  # itself too
    return {module for module in found if module and module not in ancestors}  # a parent loads first anyway


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = our_modules()
    return {name: imports(name, path, set(modules)) for name, path in modules.items()}


def ours(targets: set[str], graph: dict[str, set[str]]) -> set[str]:
    return {t for t in targets if t in graph}


def test_no_import_cycle(graph):
    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(ours(graph[start], graph))
        while todo:
            module = todo.pop()
            if module == goal:
                return True
            if module not in seen:
                seen.add(module)
                todo += ours(graph[module], graph)
        return False

    cycles = sorted(m for m in graph if reaches(m, m))
    assert not cycles, cycles


def test_imports_point_one_way_and_never_at_generic_names(graph):
    for module, targets in graph.items():
        stage = module.split(".")[1] if module.count(".") else "lstm_edge"
        assert not {t for t in targets if t.split(".")[0] in GENERIC}, module
        if stage == "edge":
            assert not {t for t in targets if t.startswith(("lstm_edge.train", "lstm_edge.export"))}, module
            assert not {t for t in targets if t.split(".")[0] in ("tensorflow", "keras", "tf_keras")}, module
        if stage == "train":
            assert not {t for t in targets if t.startswith("lstm_edge.export")}, module


def test_only_command_lines_import_command_lines(graph):
    for module, targets in graph.items():
        if not module.endswith(".cli"):
            assert not {t for t in ours(targets, graph) if t.endswith(".cli")}, module


def test_training_and_export_take_the_image_contract_without_pillow(graph):
    def uses_pillow(module: str, seen=()) -> bool:
        if any(t.split(".")[0] == "PIL" for t in graph[module]):
            return True
        return any(uses_pillow(t, (*seen, module)) for t in ours(graph[module], graph) if t not in seen)

    for module, targets in graph.items():
        draws = any(t.split(".")[0] == "PIL" for t in targets)  # train.numbers draws numbers: Pillow is its own
        if module.startswith(("lstm_edge.train", "lstm_edge.export")) and not draws:
            edge = {t for t in ours(targets, graph) if t.startswith("lstm_edge.edge")}
            assert not {t for t in edge if uses_pillow(t)}, module
    done = run_cli("-c", "import sys, lstm_edge.edge.contract; print(sorted(m for m in sys.modules if 'PIL' in m))")
    assert done.stdout.strip() == "[]"


def test_the_tests_and_benchmarks_import_stages_through_lstm_edge():
    for path in [*ROOT.glob("tests/**/*.py"), *ROOT.glob("benchmarks/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            assert not [n for n in names if n.split(".")[0] in STAGES], f"{path}: {names}"

