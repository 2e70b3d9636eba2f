"""Multi-worker training for real: two worker processes on 127.0.0.1, TF_CONFIG and
MultiWorkerMirroredStrategy through `--strategy mirrored`, a worker that dies, a cluster that never forms."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import LSTM_EDGE, ROOT, run_cli

pytest.importorskip("tensorflow")

TRAIN = ("train", "--dataset", "mnist-sample", "--units", "32", "--strategy", "mirrored", "--device", "cpu")
WAIT = 300  # seconds any worker may take; the runs below take 15-30 s here


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(out, args, tmp_path, count=2, start=None) -> list[subprocess.Popen]:
    addresses = [f"127.0.0.1:{port}" for port in free_ports(count)]
    workers = []
    for index in range(count) if start is None else start:
        tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir(exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(scratch)}
        workers.append(subprocess.Popen([sys.executable, *LSTM_EDGE, *TRAIN, *args, "--out", str(out)], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return workers


def finish(worker: subprocess.Popen, timeout: float = WAIT) -> tuple[int, str, str]:
    try:
        out, err = worker.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        out, err = worker.communicate()
        raise AssertionError(f"a worker hung past {timeout} s\nstdout:\n{out}\nstderr:\n{err}") from None
    return worker.returncode, out, err


def test_two_workers_train_one_run_the_chief_writes(tmp_path):
    out = tmp_path / "run"
    chief, other = (finish(w) for w in start_workers(out, ("--epochs", "2", "--quiet"), tmp_path))
    assert chief[0] == 0 and other[0] == 0, (chief, other)
    assert "2 replica(s)" in chief[1] and "worker 1 of 2 done; the chief writes" in other[1]
    assert not list((tmp_path / "tmp1").iterdir())  # worker 1's own checkpoints were scratch, now gone
    config = json.loads((out / "config.json").read_text())
    assert (config["strategy"], config["replicas"], config["epochs_done"]) == ("mirrored", 2, 2)

    # Both workers drew the same global batches and each trained on its half, gradients summed and
    # clipped as one process would: the result is a single-process run's, up to rounding.
    single = tmp_path / "single"
    run_cli(*LSTM_EDGE, *TRAIN[:-4], "--epochs", "2", "--quiet", "--out", str(single))
    two = json.loads(run_cli(*LSTM_EDGE, "evaluate", str(out), "--json").stdout)["accuracy"]
    one = json.loads((single / "config.json").read_text())["metrics"]["test_accuracy"]
    assert two > 0.6 and abs(two - one) <= 0.05, (two, one)  # seen: 0.790 against 0.779


def test_a_worker_that_dies_fails_the_other_with_one_line_and_keeps_the_finished_epochs(tmp_path):
    out = tmp_path / "run"
    chief, other = start_workers(out, ("--epochs", "100", "--quiet"), tmp_path)
    try:
        deadline = time.monotonic() + WAIT
        while "epoch 2:" not in chief.stdout.readline():  # the chief's line for each finished epoch
            assert chief.poll() is None and time.monotonic() < deadline, "the chief stopped before epoch 2"
        other.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        code, _, err = finish(chief, timeout=120)
    finally:
        for worker in (chief, other):
            worker.kill()
            worker.wait()
    assert time.monotonic() - killed < 120  # seen: ~1 s after the kill (TensorFlow's health check: ~8 s)
    assert code == 1 and "Traceback" not in err, err
    assert err.strip().splitlines() == [err.strip()] and "another worker of the cluster failed or stopped" in err
    assert "restart every worker with --resume" in err
    assert json.loads((out / "config.json").read_text())["epochs_done"] >= 2  # no finished epoch lost


def test_a_cluster_that_never_forms_fails_within_the_timeout(tmp_path):
    out = tmp_path / "run"
    (lone,) = start_workers(out, ("--epochs", "1", "--quiet", "--cluster-timeout", "5"), tmp_path, start=[0])
    started = time.monotonic()
    code, _, err = finish(lone, timeout=120)
    assert time.monotonic() - started < 90  # 5 s of waiting after TensorFlow's import
    assert code != 0 and err.strip().splitlines() == [err.strip()], err
    assert "did not form within 5 s" in err and "start every worker" in err
    assert not out.exists()
