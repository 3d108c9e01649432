"""tools/remote.py without a server: .env parsing, precedence, masking, configuration checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.remote import Remote, RemoteError, check, load_env, mask, parse_env


def test_parse_env_handles_comments_quotes_and_export() -> None:
    text = """
# comment
export AWS_ACCESS_KEY_ID=AKIA123
AWS_SECRET_ACCESS_KEY="with spaces and # hash"
DVC_S3_PREFIX='team/cache'
AWS_DEFAULT_REGION=eu-west-1  # inline comment
EMPTY=
"""
    assert parse_env(text) == {
        "AWS_ACCESS_KEY_ID": "AKIA123",
        "AWS_SECRET_ACCESS_KEY": "with spaces and # hash",
        "DVC_S3_PREFIX": "team/cache",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "EMPTY": "",
    }


def test_parse_env_rejects_a_line_that_is_not_key_value() -> None:
    with pytest.raises(RemoteError, match="line 2 is not KEY=VALUE"):
        parse_env("A=1\nthis is not an assignment\n")


def test_shell_variables_win_over_env_file_and_empty_values_are_unset(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "AWS_DEFAULT_REGION=eu-west-1\nDVC_S3_BUCKET=b\nAWS_ENDPOINT_URL=\n"
    )
    env = load_env(tmp_path, {"AWS_DEFAULT_REGION": "us-east-2", "PATH": "/bin"})
    assert env["AWS_DEFAULT_REGION"] == "us-east-2"
    assert env["DVC_S3_BUCKET"] == "b"
    assert "AWS_ENDPOINT_URL" not in env
    assert load_env(tmp_path / "missing", {"X": "1"}) == {"X": "1"}


def test_mask_hides_every_credential_value() -> None:
    env = {"AWS_SECRET_ACCESS_KEY": "topsecretvalue", "AWS_ACCESS_KEY_ID": "AKIAXYZ1", "X": "abcd"}
    text = "key AKIAXYZ1 secret topsecretvalue other abcd"
    assert mask(text, env) == "key *** secret *** other abcd"


def test_remote_url_parts() -> None:
    remote = Remote("s3", "s3://bucket/team/cache/")
    assert (remote.is_s3, remote.bucket, remote.prefix) == (True, "bucket", "team/cache")
    assert Remote("local", "/data/storage").is_s3 is False


def test_s3_check_without_credentials_names_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(RemoteError, match="no AWS credentials: set AWS_ACCESS_KEY_ID"):
        check(Remote("s3", "s3://bucket/p"), {"HOME": str(tmp_path)})


def test_local_remote_needs_an_existing_parent(tmp_path: Path) -> None:
    check(Remote("local", str(tmp_path / "storage")), {})
    with pytest.raises(RemoteError, match="parent folder does not exist"):
        check(Remote("local", str(tmp_path / "no" / "storage")), {})
