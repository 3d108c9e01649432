"""The cluster a Dask-engine stage computes on: started and closed with the stage (no worker
process outlives it, whether the stage ends well or with an error), its dashboard link
logged once, and an unreachable scheduler told in one line, quickly."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import yaml

from tests.dask import synth
from tests.helpers import REPO, capture, error_lines, free_ports, without_coverage

TAG = "TABML_DASK_TEST"


def project(root: Path, csv: Path | None = None, **dask: object) -> Path:
    """A minimal project for one dataset ``tiny`` with engine dask (no git, no DVC)."""
    source = root / "data" / "external" / "tiny" / "tiny.csv"
    if csv is None:
        synth.write(source, 1000)
    else:
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(csv.read_bytes())
    params = {
        "datasets": {
            "tiny": {
                "source": "data/external/tiny/tiny.csv",
                "target": synth.TARGET,
                "positive_class": synth.POSITIVE,
                "snapshot": "20250101",
                "engine": "dask",
            }
        },
        "train": {"algos": ["lr"], "model_version": 1},
        "dask": {"n_workers": 2, "memory_limit": "1GiB", "blocksize": "16KiB", **dask},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def run_stage(root: Path, stage: str, tag: str) -> tuple[object, float]:
    env = {**without_coverage(), TAG: tag}
    started = time.monotonic()
    proc = capture(
        [
            sys.executable,
            "-m",
            f"stages.{stage}",
            "--root",
            str(root),
            "--params",
            str(root / "params.yaml"),
            "--dataset",
            "tiny",
        ],
        cwd=REPO,
        env=env,
        timeout=180,
    )
    return proc, time.monotonic() - started


def tagged(tag: str) -> list[int]:
    """Live processes whose environment carries ``TAG=tag``: the stage's and its children."""
    marker = f"{TAG}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def no_process_left(tag: str, within: float = 3.0) -> list[int]:
    deadline = time.monotonic() + within
    while (left := tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_a_failing_stage_is_one_line_naming_the_file_line_and_stops_its_cluster(
    tmp_path: Path,
) -> None:
    """A stage with an empty ``dask.address`` starts a LocalCluster (its dashboard link
    logged once) and closes it before the error line, the last thing it prints: no worker
    process is left. A short row deep in the file (a later block than the first) fails the
    block that holds it; the message names the line of the whole file."""
    csv = synth.write(tmp_path / "good.csv", 1000)
    lines = csv.read_text().splitlines(keepends=True)
    bad_line = 800  # 1-based file line, the header being line 1
    lines[bad_line - 1] = ",".join(lines[bad_line - 1].split(",")[:5]) + "\n"
    csv.write_text("".join(lines))
    root = project(tmp_path / "p", csv)
    tag = uuid.uuid4().hex
    proc, _ = run_stage(root, "ingest", tag)
    assert proc.returncode == 2
    dashboard = [line for line in proc.stderr.splitlines() if "dashboard http://127.0.0.1:" in line]
    assert len(dashboard) == 1, proc.stderr[-3000:]  # the LocalCluster, logged once
    assert "started a Dask LocalCluster: 2 workers x 1 threads, 1GiB memory each" in dashboard[0]
    assert error_lines(proc.stderr) == [
        f"error: source {root / 'data/external/tiny/tiny.csv'}: line {bad_line} has 5 fields, "
        "the header has 8: a truncated or shifted row (fix or re-export the file)"
    ]
    assert proc.stderr.rstrip().endswith(error_lines(proc.stderr)[0])
    assert "Traceback" not in proc.stderr
    assert not (root / "data" / "raw" / "tiny_raw_20250101.csv").exists()
    assert no_process_left(tag) == []


def test_an_unreachable_scheduler_is_one_line_within_seconds(tmp_path: Path) -> None:
    from tabml.daskengine.cluster import CONNECT_SECONDS

    address = f"tcp://127.0.0.1:{free_ports(1)[0]}"  # nothing listens there
    root = project(tmp_path, address=address)
    tag = uuid.uuid4().hex
    proc, seconds = run_stage(root, "ingest", tag)
    assert proc.returncode == 2
    (line,) = error_lines(proc.stderr)
    assert line.startswith(
        f"error: cannot reach the Dask scheduler at dask.address = '{address}': Timed out "
        f"trying to connect to {address} after {CONNECT_SECONDS} s: start it"
    ), line
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert seconds < CONNECT_SECONDS + 15
    assert no_process_left(tag) == []


def test_a_malformed_address_is_one_line_at_once(tmp_path: Path) -> None:
    root = project(tmp_path, address="tcp://")
    proc, _ = run_stage(root, "ingest", uuid.uuid4().hex)
    assert proc.returncode == 2
    assert error_lines(proc.stderr) == [
        "error: cannot reach the Dask scheduler at dask.address = 'tcp://': missing port "
        "number in address '': start it (dask scheduler) or fix the address in params.yaml "
        "(empty starts a LocalCluster on this machine)"
    ]
    assert "Traceback" not in proc.stderr


def test_killing_a_stage_leaves_no_worker_process(tmp_path: Path) -> None:
    """SIGKILL skips every clean-up: the workers notice their parent is gone and exit."""
    import signal
    import subprocess

    root = project(tmp_path)
    tag = uuid.uuid4().hex
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stages.ingest",
            "--root",
            str(root),
            "--params",
            str(root / "params.yaml"),
            "--dataset",
            "tiny",
        ],
        cwd=REPO,
        env={**without_coverage(), TAG: tag},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "started a Dask LocalCluster" in line:
                break
        workers = [pid for pid in tagged(tag) if pid != proc.pid]
        assert len(workers) >= 2  # the worker processes (and their spawner) are running
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert no_process_left(tag, within=15.0) == []
