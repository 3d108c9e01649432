"""Fixtures for remote tests: a real S3 server on loopback and a small pipeline repo."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import built_project
from tests.remote.s3server import SeaweedS3

# Made at run time, so no file (this one included) can hold them: a test looks for them.
ACCESS_KEY = "AKIA" + secrets.token_hex(8).upper()
SECRET_KEY = "s3cr3t-" + secrets.token_urlsafe(24)
BUCKET = "dvc-test"


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    with SeaweedS3(
        tmp_path_factory.mktemp("seaweed") / "data", ACCESS_KEY, SECRET_KEY, [BUCKET]
    ) as server:
        yield server


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<tmp>/repo: the pipeline run and committed; the default local remote is <tmp>/dvc-storage."""
    repo = tmp_path_factory.mktemp("remote") / "repo"
    repo.mkdir()
    return built_project(repo)


def write_env(repo: Path, **values: str) -> None:
    """A .env as a user would write it from .env.example."""
    lines = [f"{key}={value}" for key, value in values.items()]
    (repo / ".env").write_text("# test credentials\n" + "\n".join(lines) + "\n")


def s3_env(server: SeaweedS3, prefix: str, **overrides: str) -> dict[str, str]:
    values = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "DVC_S3_BUCKET": BUCKET,
        "DVC_S3_PREFIX": prefix,
        "AWS_ENDPOINT_URL": server.endpoint,
    }
    values.update(overrides)
    return values
