"""Benchmark the model server on loopback (`make bench-serving`).

Starts ``uvicorn tabml.serving.app:app`` on a free 127.0.0.1 port against this repository's models
(the pipeline must have run: ``make repro``), then measures:

- single-row ``POST /predict`` latency (p50, p99) and throughput with 1, 8 and 32 concurrent
  clients, for each algorithm of one dataset (each setting bounded by time and requests);
- ``POST /validate`` with a CSV of 10,000 rows sampled with replacement from the raw CSV,
  target included, so the metrics are computed too (a few runs: p99 is the slowest).

Clients are threads using ``http.client`` with keep-alive connections, on the same machine
as the server (they share its cores). Prints a markdown table and stops the server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tabml.cli import setup_logging
from tabml.errors import PipelineError
from tabml.layout import Layout, model_id
from tabml.params import load_params

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench_serving")


class BenchError(Exception):
    """A problem the user can fix (models missing, server not starting)."""


@dataclass(frozen=True)
class Result:
    endpoint: str
    model_id: str
    clients: int
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    per_second: float
    unit: str  # what per_second counts: requests or rows


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q% of values at or below it."""
    ordered = sorted(values)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[min(len(ordered), max(rank, 1)) - 1]


def request(conn: http.client.HTTPConnection, path: str, body: bytes, ctype: str) -> bytes:
    conn.request("POST", path, body=body, headers={"Content-Type": ctype})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise BenchError(f"{path} answered {response.status}: {data[:300]!r}")
    return data


def load(
    port: int, path: str, body: bytes, ctype: str, clients: int, seconds: float, max_requests: int
) -> tuple[list[float], int, float]:
    """Run ``clients`` threads until the time or request budget is spent.

    Returns the latencies (seconds), the number of failed requests and the wall time.
    """
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    budget = [max_requests]
    start_gate = threading.Barrier(clients + 1)

    def take() -> bool:
        with lock:
            if budget[0] <= 0:
                return False
            budget[0] -= 1
            return True

    def client() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        failed = 0
        start_gate.wait()
        deadline = time.perf_counter() + seconds
        try:
            while time.perf_counter() < deadline and take():
                t0 = time.perf_counter()
                try:
                    request(conn, path, body, ctype)
                except (BenchError, OSError, http.client.HTTPException):
                    failed += 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    continue
                mine.append(time.perf_counter() - t0)
        finally:
            conn.close()
        with lock:
            latencies.extend(mine)
            errors += failed

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - began


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = f"bench{uuid.uuid4().hex}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def start_server(root: Path, port: int, log_file: Path) -> subprocess.Popen:
    env = dict(os.environ, SERVING_ROOT=str(root))
    cmd = [sys.executable, "-m", "uvicorn", "tabml.serving.app:app", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--no-access-log"]
    with log_file.open("wb") as out:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(server: subprocess.Popen, port: int, log_file: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log_file.read_text(errors="replace").strip().splitlines()[-5:]
            raise BenchError(f"the server exited ({server.returncode}): {' | '.join(tail)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"the server did not become healthy within {timeout:.0f} s")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def bench(args: argparse.Namespace) -> list[Result]:
    import pandas as pd

    root = Path(args.root).resolve()
    try:
        params = load_params(root / "params.yaml")
        spec = params.dataset(args.dataset)
    except PipelineError as exc:
        raise BenchError(str(exc)) from None
    layout = Layout(root)
    version = params.train.model_version
    model_ids = [model_id(a, args.dataset, version) for a in params.train.algos]
    missing = [
        str(layout.model(a, args.dataset, version).relative_to(root))
        for a in params.train.algos
        if not layout.model(a, args.dataset, version).exists()
    ]
    raw_path = layout.raw(args.dataset, spec.snapshot)
    if missing or not raw_path.exists():
        what = ", ".join(missing) if missing else str(raw_path.relative_to(root))
        raise BenchError(f"{what} missing: run `make repro` first to train the models")

    raw = pd.read_csv(raw_path, sep=spec.sep, low_memory=False)
    first = json.loads(raw.drop(columns=[spec.target]).iloc[[0]].to_json(orient="records"))[0]
    sample = raw.sample(n=args.validate_rows, replace=True, random_state=0)
    csv_bytes = sample.to_csv(index=False).encode()

    results: list[Result] = []
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        log_file = Path(tmp) / "server.log"
        server = start_server(root, port, log_file)
        try:
            wait_healthy(server, port, log_file, timeout=120)
            log.info("server up on 127.0.0.1:%d", port)
            for served_id in model_ids:
                body = json.dumps({"rows": [first], "model_id": served_id}).encode()
                load(port, "/predict", body, "application/json", 1, 1.0, 200)  # warm-up
                for clients in args.concurrency:
                    lat, errors, wall = load(
                        port,
                        "/predict",
                        body,
                        "application/json",
                        clients,
                        args.seconds,
                        args.max_requests,
                    )
                    results.append(
                        Result(
                            "/predict 1 row",
                            served_id,
                            clients,
                            len(lat),
                            errors,
                            percentile(lat, 50) * 1e3,
                            percentile(lat, 99) * 1e3,
                            len(lat) / wall,
                            "req/s",
                        )
                    )
                    log.info("%s", describe(results[-1]))
            for served_id in model_ids:
                body, ctype = multipart({"model_id": served_id}, "bench.csv", csv_bytes)
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                out = json.loads(request(conn, "/validate", body, ctype))  # warm-up and check
                conn.close()
                if out["n_rows"] != args.validate_rows or not out["evaluation"]["metrics"]:
                    raise BenchError(f"/validate returned {out['n_rows']} rows or no metrics")
                lat, errors, _ = load(port, "/validate", body, ctype, 1, 60.0, args.validate_runs)
                results.append(
                    Result(
                        f"/validate {args.validate_rows:,} rows",
                        served_id,
                        1,
                        len(lat),
                        errors,
                        percentile(lat, 50) * 1e3,
                        percentile(lat, 99) * 1e3,  # of a few runs: the slowest
                        args.validate_rows / percentile(lat, 50),
                        "rows/s",
                    )
                )
                log.info("%s", describe(results[-1]))
        finally:
            stop_server(server)
    return results


def describe(r: Result) -> str:
    return (
        f"{r.endpoint} {r.model_id} x{r.clients}: {r.requests} requests, p50 {r.p50_ms:.1f} ms, "
        f"p99 {r.p99_ms:.1f} ms, {r.per_second:,.0f} {r.unit}"
    )


def table(results: list[Result]) -> str:
    lines = [
        "| endpoint | model | clients | requests | errors | p50 ms | p99 ms | throughput |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.endpoint} | {r.model_id} | {r.clients} | {r.requests} | {r.errors} | "
            f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.per_second:,.0f} {r.unit} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="repository root (default: %(default)s)")
    parser.add_argument("--dataset", default="credit", help="dataset whose models to measure")
    parser.add_argument("--seconds", type=float, default=2.0, help="time budget per setting")
    parser.add_argument("--max-requests", type=int, default=5000, help="requests per setting")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 8, 32],
        help="comma-separated client counts (default: 1,8,32)",
    )
    parser.add_argument("--validate-rows", type=int, default=10_000)
    parser.add_argument("--validate-runs", type=int, default=5)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    try:
        results = bench(args)
    except BenchError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stdout.write(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
