"""Emulated Raspberry Pis for the tests, set up without root and without touching the system.

Debian's packages come through a private apt configuration (its own sources list, package lists
and archives, all under the cache; the system's apt sources and dpkg database are never changed):
apt resolves the guest's packages and their dependencies against an empty dpkg status, downloads
them, and `dpkg-deb -x` unpacks them into the guest's root; nothing is installed. The emulator is
qemu-user from Debian 13 (trixie): from QEMU 8.2 on, user mode emulates /proc/cpuinfo for ARM
guests; with bookworm's qemu 7.2 the guest saw the host's, and LiteRT's CPU detection crashed on it.
What pip puts on a Pi is installed by this machine's pip for the guest's platform (`--target`,
`--platform`), with the same command line the README gives the Pi's user (`tests/pi/boards.py`).

    python -m tests.pi.emulator [--row NAME] --setup             build (or find) that Pi
    python -m tests.pi.emulator [--row NAME] [--cpu C] ARGS      run its python3 with ARGS

The cache is $LSTM_EDGE_PI_CACHE (default ~/.cache/lstm-edge/pi); each part is keyed by what it
holds, so a second run only starts the emulator. Packages come from the Debian mirror the system's
apt already uses, or from $LSTM_EDGE_DEBIAN_MIRROR. Exit status 77: no package index can be
reached (or this is not a Debian-like system), with the reason on stderr.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
QEMU_SUITE = "trixie"  # qemu-user 10.0, statically linked; trixie's qemu-user-static is only a transitional package
UNAVAILABLE = 77


class EmulatorUnavailable(Exception):
    """The emulated Pi cannot be set up on this machine (the reason is the message)."""


@dataclass(frozen=True)
class Guest:
    """A Raspberry Pi OS as Debian packages: the release, the architecture, its Python."""

    suite: str
    arch: str  # Debian's name for it
    python: str
    qemu: str  # the user-mode emulator binary
    packages: tuple[str, ...]  # apt resolves their dependencies
    wheel_platforms: tuple[str, ...]  # what pip may take for it
    links: tuple[tuple[str, str], ...] = ()  # (path, target): what a real install makes and dpkg-deb -x does not

    @property
    def name(self) -> str:
        return f"{self.suite}-{self.arch}"

    @property
    def python_version(self) -> str:
        return self.python.removeprefix("python")


AARCH64 = ("manylinux_2_34_aarch64", "manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux2014_aarch64")
# Raspberry Pi OS 64-bit: bookworm is Debian 12 (Python 3.11), trixie Debian 13 (Python 3.13). Every
# image has the C++ runtime that the wheels' native code needs (numpy, LiteRT), though Python does not.
BOOKWORM_ARM64 = Guest("bookworm", "arm64", "python3.11", "qemu-aarch64", ("python3.11", "libstdc++6"), AARCH64)
TRIXIE_ARM64 = Guest("trixie", "arm64", "python3.13", "qemu-aarch64", ("python3.13", "libstdc++6"), AARCH64)
# Raspberry Pi OS 32-bit (Pi Zero 2 W, Pi 3): Debian 12 armhf. PyPI has no armv7 numpy wheels, so
# numpy and Pillow are Debian's; numpy finds BLAS through links that update-alternatives makes.
BOOKWORM_ARMHF = Guest(
    "bookworm", "armhf", "python3.11", "qemu-arm",
    ("python3.11", "libstdc++6", "python3-numpy", "python3-pil", "libgomp1"),
    ("manylinux_2_34_armv7l", "manylinux_2_31_armv7l", "manylinux2014_armv7l", "linux_armv7l"),
    links=(("usr/lib/arm-linux-gnueabihf/libblas.so.3", "blas/libblas.so.3"),
           ("usr/lib/arm-linux-gnueabihf/liblapack.so.3", "lapack/liblapack.so.3")),
)


@dataclass(frozen=True)
class Emulator:
    """One guest Python with its pip-installed packages, run under qemu-user."""

    guest: Guest
    qemu: Path
    root: Path
    paths: tuple[Path, ...]  # PYTHONPATH: what pip installed, first wins
    cpu: str

    def command(self, *args: str) -> list[str]:
        return [str(self.qemu), "-L", str(self.root), str(self.root / "usr" / "bin" / self.guest.python), *args]

    def environment(self, cpu: str | None = None) -> dict[str, str]:
        return {**os.environ, "QEMU_CPU": cpu or self.cpu, "PYTHONPATH": os.pathsep.join(map(str, self.paths)),
                "PYTHONNOUSERSITE": "1",
                # qemu flushes subnormals, and numpy's float limits warn about it on import: harmless
                "PYTHONWARNINGS": "ignore::UserWarning:numpy.core.getlimits,ignore::UserWarning:numpy._core.getlimits"}

    def run(self, *args: str, cpu: str | None = None, timeout: float = 1200) -> subprocess.CompletedProcess:
        # Not from this checkout's folder: `python -m lstm_edge.edge.cli` there would find its lstm_edge first.
        return subprocess.run(self.command(*args), capture_output=True, text=True, env=self.environment(cpu),
                              timeout=timeout, cwd=self.root)

    def start(self, *args: str) -> subprocess.Popen:
        """The guest's python3 ARGS left running (a server), its stderr a pipe."""
        return subprocess.Popen(self.command(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=self.environment(), cwd=self.root)


def cache_folder() -> Path:
    return Path(os.environ.get("LSTM_EDGE_PI_CACHE") or Path.home() / ".cache" / "lstm-edge" / "pi")


def setup(guest: Guest, pip_commands, wheel: Path, cpu: str, cache: Path | None = None) -> Emulator:
    """Build (or find) the emulator, the guest's root and what pip installs there.

    Args:
      pip_commands: the arguments of each `pip install` the user runs, in order; "lstm_edge-*.whl"
        stands for `wheel`.
      wheel: this checkout's lstm-edge wheel.
      cpu: QEMU_CPU, the board's core.
    Raises:
      EmulatorUnavailable: no package index reachable, or no apt/dpkg on this machine.
      RuntimeError: something else failed (a package missing from the index, pip refused).
    """
    cache = cache or cache_folder()
    host = _host_architecture()
    qemu_dir = _built(cache / f"qemu-{QEMU_SUITE}-{host}", lambda out: _unpack_qemu(cache, host, out))
    root = _built(cache / f"root-{guest.name}-{_digest((*guest.packages, *map(str, guest.links)))}",
                  lambda out: _unpack_guest(cache, guest, out))
    commands = [tuple(str(wheel) if a == WHEEL else a for a in command) for command in pip_commands]
    # What pip installs is keyed by the commands and the wheel's requirements, not by our code,
    # which goes in fresh on top: a code change does not download the dependencies again.
    key = _digest((*map(" ".join, pip_commands), *_requirements(wheel), *guest.wheel_platforms, guest.python))
    site = _built(cache / f"site-{guest.name}-{key}", lambda out: _pip_install(guest, commands, out))
    ours = _built(cache / f"lstm-edge-{_file_digest(wheel)}",
                  lambda out: _pip_install(guest, [("--no-deps", str(wheel))], out))
    return Emulator(guest, qemu_dir / guest.qemu, root, (ours, site), cpu)


WHEEL = "lstm_edge-*.whl"  # how the README names the wheel a user copies to the Pi

def _built(folder: Path, build) -> Path:
    """`folder`, built by `build(tmp)` into a temporary folder and renamed when complete."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        build(tmp)
        try:
            tmp.rename(folder)
        except OSError:  # another process built the same meanwhile: keep its copy
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _digest(items) -> str:
    return hashlib.sha256("\n".join(items).encode()).hexdigest()[:12]


def _host_architecture() -> str:
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb") and shutil.which("dpkg")):
        raise EmulatorUnavailable("apt-get and dpkg-deb are needed to fetch Debian's packages (a Debian-like system)")
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()


def debian_mirror(etc_apt: str = "/etc/apt") -> str:
    """The Debian mirror this system's apt uses (or $LSTM_EDGE_DEBIAN_MIRROR)."""
    if os.environ.get("LSTM_EDGE_DEBIAN_MIRROR"):
        return os.environ["LSTM_EDGE_DEBIAN_MIRROR"].rstrip("/")
    releases = {"buster", "bullseye", "bookworm", "trixie", "forky", "sid", "stable", "testing", "unstable",
                "oldstable"}
    files = [f"{etc_apt}/sources.list", *sorted(glob.glob(f"{etc_apt}/sources.list.d/*.list")),
             *sorted(glob.glob(f"{etc_apt}/sources.list.d/*.sources"))]
    for file in files:
        try:
            text = Path(file).read_text()
        except OSError:
            continue
        entries = []
        if file.endswith(".sources"):  # deb822 stanzas
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
                entries += [(uri, fields.get("Suites", "").split()) for uri in fields.get("URIs", "").split()]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    entries.append((words[1], [words[2]]))
        for uri, suites in entries:
            if any(suite.split("-")[0] in releases and "security" not in suite for suite in suites):
                return uri.rstrip("/")
    raise EmulatorUnavailable(f"no Debian mirror in {etc_apt}'s sources; set LSTM_EDGE_DEBIAN_MIRROR to one")


def _apt_download(cache: Path, suite: str, arch: str, packages, out: Path, resolve: bool = True) -> list[Path]:
    """Download `packages` of Debian `suite` for `arch` into `out` through a private apt
    configuration; with `resolve`, their dependencies too (against an empty dpkg status)."""
    if not KEYRING.is_file():
        raise EmulatorUnavailable(f"{KEYRING} is missing (Debian package debian-archive-keyring)")
    apt = cache / "apt" / f"{suite}-{arch}"
    (apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (out / "partial").mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(f"deb [signed-by={KEYRING}] {debian_mirror()} {suite} main\n")
    options = ["-q", "-y", "-o", f"Dir::Etc::SourceList={apt / 'sources.list'}",
               "-o", "Dir::Etc::SourceParts=/dev/null",
               "-o", f"Dir::State::Lists={apt / 'lists'}", "-o", f"Dir::Cache::archives={out}",
               "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=", "-o", "Dir::State::status=/dev/null",
               "-o", "Dir::Etc::Preferences=/dev/null", "-o", "Dir::Etc::PreferencesParts=/dev/null",
               "-o", f"APT::Architecture={arch}", "-o", f"APT::Architectures::={arch}",
               "-o", "APT::Install-Recommends=0", "-o", "Debug::NoLocking=1"]
    if os.geteuid() == 0:  # root's apt downloads as the user _apt, who cannot write into a private cache
        options += ["-o", "APT::Sandbox::User=root"]
    done = subprocess.run(["apt-get", *options, "update"], capture_output=True, text=True)
    if done.returncode != 0 or "Err:" in done.stdout:
        reason = next((line for line in (done.stdout + done.stderr).splitlines() if "Err" in line or "E:" in line),
                      f"exit {done.returncode}")
        raise EmulatorUnavailable(f"no Debian package index reachable for {suite}/{arch}: {reason.strip()}")
    verb = ["install", "--download-only"] if resolve else ["download"]
    done = subprocess.run(["apt-get", *options, *verb, *packages], capture_output=True, text=True, cwd=out)
    if done.returncode != 0:
        raise RuntimeError(f"apt-get could not fetch {' '.join(packages)} ({suite}/{arch}): "
                           f"{done.stderr.strip()[-500:]}")
    return sorted(out.glob("*.deb"))


def _unpack_qemu(cache: Path, host: str, out: Path) -> None:
    debs = out / "debs"
    debs.mkdir()
    (deb,) = _apt_download(cache, QEMU_SUITE, host, ["qemu-user"], debs, resolve=False)
    # Only the two ARM emulators of the ~70 MB package are needed.
    subprocess.run(f'dpkg-deb --fsys-tarfile "{deb}" | tar -x -C "{debs}" ./usr/bin/qemu-aarch64 ./usr/bin/qemu-arm',
                   shell=True, check=True)
    for binary in ("qemu-aarch64", "qemu-arm"):
        (debs / "usr" / "bin" / binary).rename(out / binary)
    shutil.rmtree(debs)


def _unpack_guest(cache: Path, guest: Guest, out: Path) -> None:
    debs = cache / "apt" / f"{guest.name}-debs-{os.getpid()}"
    shutil.rmtree(debs, ignore_errors=True)
    debs.mkdir(parents=True)
    try:
        for deb in _apt_download(cache, guest.suite, guest.arch, guest.packages, debs):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True)
    finally:
        shutil.rmtree(debs, ignore_errors=True)
    if not (out / "lib").exists():  # merged /usr (trixie): single packages leave no /lib link
        (out / "lib").symlink_to("usr/lib")
    for path, target in guest.links:
        (out / path).symlink_to(target)


def _requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return [line for line in archive.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _pip_install(guest: Guest, commands, out: Path) -> None:
    """Each `pip install` command, as the guest's pip would resolve it, into `out`."""
    platforms = [arg for p in guest.wheel_platforms for arg in ("--platform", p)]
    for command in commands:
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                               "--upgrade", "--target", str(out), "--only-binary=:all:", "--implementation", "cp",
                               "--python-version", guest.python_version, *platforms, *command],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip install {' '.join(command)} failed for {guest.name}: "
                               f"{done.stderr.strip()[-500:]}")


def emulator_for(row, wheel: Path, cpu: str | None = None) -> Emulator:
    """The emulated Pi of one README row (tests/pi/boards.py)."""
    guest = row.guest
    if row.apt_packages and not set(row.apt_packages) <= set(guest.packages):
        raise RuntimeError(f"{row.name}: the README's apt packages {row.apt_packages} are not in {guest.name}'s")
    return setup(guest, row.pip_commands, wheel, cpu or row.cpus[0])


def main(argv=None) -> int:
    from benchmarks.coldstart import build_wheel
    from tests.pi.boards import ROWS

    rows = {row.name: row for row in ROWS}
    parser = argparse.ArgumentParser(prog="python -m tests.pi.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="only build (or find) the environment")
    parser.add_argument("--row", choices=list(rows), default=ROWS[0].name)
    parser.add_argument("--cpu", help="QEMU_CPU [default: the row's first]")
    args, rest = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory() as work:
        try:
            emulator = emulator_for(rows[args.row], build_wheel(Path(work)), args.cpu)
        except EmulatorUnavailable as e:
            print(f"tests/pi: {e}", file=sys.stderr)
            return UNAVAILABLE
        except RuntimeError as e:
            print(f"tests/pi: {e}", file=sys.stderr)
            return 1
    if args.setup:
        print(" ".join(emulator.command()))
        return 0
    return subprocess.run(emulator.command(*rest), env=emulator.environment(), cwd=emulator.root).returncode


if __name__ == "__main__":
    sys.exit(main())
