"""tools/remote.py without a server: .env parsing, precedence, masking, configuration checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.remote import (
    DvcRun,
    Remote,
    RemoteError,
    check,
    configure_s3,
    load_env,
    mask,
    parse_env,
    pull_failure,
    pull_targets,
)


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


CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIAXYZ1", "AWS_SECRET_ACCESS_KEY": "topsecretvalue"}


def test_mask_also_hides_url_userinfo_and_query_values() -> None:
    text = "at http://alice:pa55word@host:9000/x?token=abc&y=1 key AKIAXYZ1 secret topsecretvalue"
    assert mask(text, CREDENTIALS) == (
        "at http://***@host:9000/x?token=***&y=*** key *** secret ***"
    )


@pytest.mark.parametrize(
    ("values", "pieces"),
    [
        (
            {"DVC_S3_BUCKET": "Bad_Bucket!"},
            ["DVC_S3_BUCKET is 'Bad_Bucket!': not a valid S3 bucket name", "make remote-s3"],
        ),
        (
            {"DVC_S3_BUCKET": "b", "AWS_ENDPOINT_URL": "not a url"},
            ["AWS_ENDPOINT_URL is 'not a url': not an http(s) URL", "http(s)://host[:port]"],
        ),
        (
            {"DVC_S3_BUCKET": "b", "AWS_ENDPOINT_URL": "ftp://host:21"},
            ["AWS_ENDPOINT_URL is 'ftp://host:21': not an http(s) URL"],
        ),
        (
            {"DVC_S3_BUCKET": "b", "AWS_ENDPOINT_URL": "http://alice:pa55word@host:9000"},
            [
                "AWS_ENDPOINT_URL is 'http://***@host:9000': it holds a credential",
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ],
        ),
        (
            {
                "DVC_S3_BUCKET": "b",
                "AWS_ENDPOINT_URL": "http://host:9000/?X-Amz-Signature=pa55word",
            },
            ["AWS_ENDPOINT_URL is 'http://host:9000/?X-Amz-Signature=***': it holds a credential"],
        ),
    ],
    ids=["bucket", "not-a-url", "ftp", "userinfo", "signature"],
)
def test_configure_s3_refuses_bad_settings_before_writing_anything(
    tmp_path: Path, values: dict[str, str], pieces: list[str]
) -> None:
    with pytest.raises(RemoteError) as info:
        configure_s3(tmp_path, {**CREDENTIALS, **values})
    message = str(info.value)
    for piece in pieces:
        assert piece in message
    assert "pa55word" not in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []  # no dvc ran: nothing written


@pytest.mark.parametrize(
    ("remote", "env", "piece"),
    [
        (
            Remote("s3", "s3://Bad_Bucket!/p"),
            {},
            "the bucket of DVC remote 's3' is 'Bad_Bucket!': not a valid S3 bucket name",
        ),
        (
            Remote("s3", "s3://b/p", endpoint="not a url"),
            {"AWS_ENDPOINT_URL": "http://fine:9000"},
            "the endpointurl of DVC remote 's3' is 'not a url': not an http(s) URL",
        ),
        (
            Remote("s3", "s3://b/p"),
            {"AWS_ENDPOINT_URL": "not a url"},
            "AWS_ENDPOINT_URL is 'not a url': not an http(s) URL",
        ),
        (
            Remote("s3", "s3://b/p", endpoint="http://u:pa55word@h:1"),
            {},
            "the endpointurl of DVC remote 's3' is 'http://***@h:1': it holds a credential",
        ),
    ],
    ids=["bucket", "remote-endpoint", "env-endpoint", "credential"],
)
def test_s3_check_refuses_bad_settings_in_one_line(
    tmp_path: Path, remote: Remote, env: dict[str, str], piece: str
) -> None:
    with pytest.raises(RemoteError) as info:
        check(remote, {**CREDENTIALS, "HOME": str(tmp_path), **env})
    assert piece in str(info.value) and "pa55word" not in str(info.value)


REMOTE = Remote("storage", "/srv/dvc")
A_MD5, X_MD5, Y_MD5 = (
    "b1946ac92492d2347c6235b4d2611184",
    "e8a5da21" + "0" * 24,
    "e2ee9ad1" + "0" * 24,
)
HASHES = {"a.txt": A_MD5, "d/x": X_MD5, "d/y": Y_MD5, "b.txt": "ef" * 16}
CHECKOUT_FAILED = (
    "ERROR: failed to pull data from the cloud - Checkout failed for following targets:\n"
    "d\na.txt\nIs your cache up to date?\n<https://error.dvc.org/missing-files>\n"
)


def test_pull_failure_names_the_files_that_failed_the_hash_check() -> None:
    run = DvcRun(1, CHECKOUT_FAILED, frozenset({A_MD5, X_MD5}))
    # A local remote drops a corrupted object it holds: dvc status then says "missing".
    message = pull_failure(run, {"d/x": "deleted", "a.txt": "missing"}, HASHES, REMOTE)
    assert message is not None and "\n" not in message
    assert message.startswith(
        "dvc pull from remote 'storage' failed: a.txt, d/x failed the hash check "
    )
    assert f"/srv/dvc/files/md5/b1/{A_MD5[2:]}, /srv/dvc/files/md5/e8/{X_MD5[2:]}" in message
    assert "make push" in message and "never pushed" not in message
    assert "remote-check" not in message


def test_pull_failure_names_files_never_pushed() -> None:
    output = (
        "WARNING: Some of the cache files do not exist neither locally nor on remote. "
        "Missing cache files:\nmd5: c6330f0c422ea43e0a1dd9012db26686\n"
        "ERROR: failed to pull data from the cloud - Checkout failed for following targets:\n"
        "e.txt\nIs your cache up to date?\n"
    )
    message = pull_failure(DvcRun(1, output, frozenset()), {"e.txt": "missing"}, HASHES, REMOTE)
    assert message is not None
    assert message.startswith("dvc pull from remote 'storage' failed: e.txt was never pushed")
    assert "make push" in message and "remote-check" not in message


def test_pull_failure_tells_download_errors_from_hash_failures() -> None:
    output = (
        f"ERROR: failed to transfer '{Y_MD5}' - [Errno 2] No such file or directory\n"
        + CHECKOUT_FAILED
    )
    run = DvcRun(1, output, frozenset({A_MD5}))
    message = pull_failure(run, {"d/y": "deleted", "a.txt": "deleted"}, HASHES, REMOTE)
    assert message is not None
    assert "a.txt failed the hash check" in message
    assert "d/y could not be downloaded" in message and "remote-check" in message


def test_pull_failure_names_an_object_no_file_holds_by_its_md5() -> None:
    run = DvcRun(1, CHECKOUT_FAILED, frozenset({"ab" * 16}))
    message = pull_failure(run, {}, HASHES, REMOTE)
    assert message is not None and f"object {'ab' * 16} failed the hash check" in message


def test_pull_failure_without_a_known_cause_is_none() -> None:
    run = DvcRun(1, "ERROR: Unable to acquire lock\n", frozenset())
    assert pull_failure(run, {"a.txt": "deleted"}, HASHES, REMOTE) is None
    assert pull_failure(run, None, {}, REMOTE) is None


def test_pull_targets_are_the_positional_arguments() -> None:
    assert pull_targets(["-j", "4", "data/raw", "--force", "-r", "x", "models"]) == [
        "data/raw",
        "models",
    ]
