"""Multi-worker training: what TF_CONFIG says, who writes the run folder, and a bound on waiting
for the cluster to form.

TensorFlow's MultiWorkerMirroredStrategy waits for every worker named in TF_CONFIG without a
limit, and ignores SIGTERM while it does: a worker that never comes would hang the others for good.
Once the cluster has formed, a worker that dies makes the others' next step fail within seconds
(seen here: ~1 s for a killed worker, ~8 s for a stopped one), which the trainer turns into one line.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from contextlib import contextmanager

from .errors import TrainError

CLUSTER_TIMEOUT = 300.0  # seconds a worker waits for the others to join


def tf_config() -> dict:
    """TF_CONFIG as a dict ({} when unset).

    Raises:
      TrainError: it is not a JSON object.
    """
    text = os.environ.get("TF_CONFIG") or ""
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except ValueError as e:
        raise TrainError(f"TF_CONFIG is not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise TrainError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    return config


def is_multi_worker() -> bool:
    return bool(tf_config().get("cluster"))


def is_chief() -> bool:
    """Only the chief (or worker 0 where no chief is named) writes the run folder."""
    config = tf_config()
    task = config.get("task") or {}
    if not task:
        return True
    return task.get("type") == "chief" or (task.get("type") == "worker" and task.get("index") == 0
                                           and "chief" not in config.get("cluster", {}))


def describe_task() -> str:
    """"worker 1 of 2" for this process's task in TF_CONFIG."""
    config = tf_config()
    task = config.get("task") or {}
    jobs = config.get("cluster") or {}
    count = sum(len(addresses) for addresses in jobs.values())
    return f"{task.get('type', 'task')} {task.get('index', 0)} of {count}"


def task_address() -> str:
    """This process's own address in TF_CONFIG ("host:port"), or "" when it names none."""
    config = tf_config()
    task = config.get("task") or {}
    addresses = (config.get("cluster") or {}).get(task.get("type"), [])
    index = task.get("index", 0)
    return addresses[index] if isinstance(index, int) and 0 <= index < len(addresses) else ""


@contextmanager
def cluster_deadline(seconds: float = CLUSTER_TIMEOUT):
    """Within the block the cluster must form: past `seconds` the process is ended with one line.

    TensorFlow waits in C++ holding Python's lock, deaf to SIGTERM: no thread or signal handler of
    this process can act. A forked watchdog can: it waits on a pipe that the block's end (or this
    process's death) closes, and otherwise prints the line and kills this process. Without
    TF_CONFIG this does nothing.
    """
    if not is_multi_worker():
        yield
        return
    if not seconds > 0:
        raise TrainError(f"the cluster timeout must be a positive number of seconds (got {seconds})")
    peers = ", ".join(address for addresses in tf_config()["cluster"].values() for address in addresses)
    message = (f"Error: {describe_task()}: the cluster in TF_CONFIG ({peers}) did not form within {seconds:g} s: "
               "start every worker, check the addresses, or raise --cluster-timeout\n")
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    done_reading, done_writing = os.pipe()
    watchdog = os.fork()
    if watchdog == 0:  # the watchdog: only system calls from here on, then _exit
        try:
            os.close(done_writing)
            formed, _, _ = select.select([done_reading], [], [], seconds)
            if not formed:
                os.write(2, message.encode())
                os.kill(parent, signal.SIGKILL)
        finally:
            os._exit(0)
    os.close(done_reading)
    try:
        yield
    finally:
        os.close(done_writing)  # the watchdog reads end-of-file and leaves
        os.waitpid(watchdog, 0)
