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


# --- objects never pushed that `dvc status --cloud` does not see (issue 10) -----------------
# A directory output whose listing (.dir object) never reached the remote: dvc pull warns
# "Missing cache files: md5: <X>.dir" and fails, while `dvc status --cloud` says "in sync"
# (it cannot expand a listing it does not have). The line used to be "dvc pull to remote ...
# failed (exit 1); `make remote-check` ...", and remote-check then said the remote was fine.
DIR_MD5 = "51475286525ea7ebed8b8d1b52880bcb.dir"
NEVER_PUSHED_DIR = (
    "WARNING: Some of the cache files do not exist neither locally nor on remote. Missing "
    f"cache files:\nmd5: {DIR_MD5}\nA       single.txt\n1 file fetched and 1 file added\n"
    "ERROR: failed to pull data from the cloud - Checkout failed for following targets:\n"
    "out\nIs your cache up to date?\n<https://error.dvc.org/missing-files>\n"
)


def test_pull_failure_names_a_directory_dvc_status_calls_in_sync() -> None:
    hashes = {**HASHES, "out": DIR_MD5}
    message = pull_failure(DvcRun(1, NEVER_PUSHED_DIR, frozenset()), {}, hashes, REMOTE)
    assert message is not None and "\n" not in message
    assert message.startswith(
        "dvc pull from remote 'storage' failed: out was never pushed (1 object is in neither "
        "the remote nor the local cache): "
    )
    assert "`make push` on the machine that produced it" in message
    assert "`make repro` here to rebuild it" in message
    assert "remote-check" not in message


def test_pull_failure_counts_every_missing_object_and_names_a_few() -> None:
    md5s = [f"{i:02x}" + "0" * 30 for i in range(7)]
    output = (
        "WARNING: Some of the cache files do not exist neither locally nor on remote. Missing "
        "cache files:\n" + "".join(f"md5: {m}\n" for m in md5s) + CHECKOUT_FAILED
    )
    hashes = {f"f{i}.csv": m for i, m in enumerate(md5s[:6])}  # the last one: no file known
    # dvc status sees the plain files (the same objects: counted once).
    statuses = {"f0.csv": "missing", "f1.csv": "missing"}
    message = pull_failure(DvcRun(1, output, frozenset()), statuses, hashes, REMOTE)
    assert message is not None and "\n" not in message
    assert message.startswith(
        "dvc pull from remote 'storage' failed: f0.csv, f1.csv, f2.csv, f3.csv, f4.csv and 2 "
        "more were never pushed (7 objects are in neither the remote nor the local cache): "
    )
    assert "rebuild them" in message and "remote-check" not in message


def test_pull_failure_names_a_missing_object_no_file_holds_by_its_md5() -> None:
    output = NEVER_PUSHED_DIR.replace(DIR_MD5, "cd" * 16)
    message = pull_failure(DvcRun(1, output, frozenset()), {}, HASHES, REMOTE)
    assert message is not None
    assert f"failed: object {'cd' * 16} was never pushed (1 object" in message


def test_a_corrupted_object_dvc_also_reports_missing_is_not_called_never_pushed() -> None:
    output = NEVER_PUSHED_DIR.replace(DIR_MD5, A_MD5)
    message = pull_failure(DvcRun(1, output, frozenset({A_MD5})), {}, HASHES, REMOTE)
    assert message is not None and "a.txt failed the hash check" in message
    assert "never pushed" not in message


def test_tracked_objects_maps_lock_and_dvc_file_outs_and_cached_listings(tmp_path: Path) -> None:
    """Paths come from dvc.lock and the .dvc files (no remote asked); the files inside a
    directory from its listing when the local cache has it."""
    import json

    from dvc.repo import Repo

    from tools.remote import tracked_objects

    Repo.init(str(tmp_path), no_scm=True).close()
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  make:\n    cmd: echo\n    outs:\n    - out\n    - single.txt\n"
    )
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  make:\n    cmd: echo\n    outs:\n"
        f"    - path: out\n      hash: md5\n      md5: {DIR_MD5}\n      size: 6\n      nfiles: 2\n"
        f"    - path: single.txt\n      hash: md5\n      md5: {A_MD5}\n      size: 6\n"
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "added.csv.dvc").write_text(
        f"outs:\n- md5: {Y_MD5}\n  size: 3\n  hash: md5\n  path: added.csv\n"
    )
    listing = tmp_path / ".dvc" / "cache" / "files" / "md5" / DIR_MD5[:2] / DIR_MD5[2:]
    listing.parent.mkdir(parents=True)
    listing.write_text(json.dumps([{"md5": X_MD5, "relpath": "x"}, {"md5": Y_MD5, "relpath": "y"}]))
    assert tracked_objects(tmp_path) == {
        "out": DIR_MD5,
        "out/x": X_MD5,
        "out/y": Y_MD5,
        "single.txt": A_MD5,
        "data/added.csv": Y_MD5,
    }
    listing.unlink()
    assert tracked_objects(tmp_path) == {
        "out": DIR_MD5,
        "single.txt": A_MD5,
        "data/added.csv": Y_MD5,
    }
    assert tracked_objects(tmp_path / "not-a-repo") == {}


def _fake_pull(monkeypatch: pytest.MonkeyPatch, run: DvcRun, status: object) -> None:
    """main("pull") with the remote checked fine and dvc's answers given."""
    import tools.remote as tool

    monkeypatch.setattr(tool, "read_remote", lambda root, name: REMOTE)
    monkeypatch.setattr(tool, "check", lambda remote, env: None)
    monkeypatch.setattr(tool, "ensure_verify", lambda root, remote, env: None)
    monkeypatch.setattr(tool, "_dvc", lambda args, root, env: run)
    monkeypatch.setattr(tool, "_dvc_quiet", lambda args, root, env: status)
    monkeypatch.setattr(tool, "tracked_objects", lambda root: {**HASHES, "out": DIR_MD5})


def test_make_pull_of_a_directory_never_pushed_says_so_not_remote_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.remote import main

    _fake_pull(monkeypatch, DvcRun(1, NEVER_PUSHED_DIR, frozenset()), {})
    assert main(["pull", "--root", str(tmp_path)]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(
        "error: dvc pull from remote 'storage' failed: out was never pushed (1 object"
    )
    assert "remote-check" not in last


def test_an_unexplained_pull_failure_quotes_dvc_not_remote_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The remote answered the check just before: the line quotes dvc's own error instead."""
    from tools.remote import main

    output = "Collecting\nERROR: Unable to acquire lock. Most likely another DVC process\n"
    _fake_pull(monkeypatch, DvcRun(1, output, frozenset()), {})
    assert main(["pull", "--root", str(tmp_path)]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == (
        "error: dvc pull from remote 'storage' failed (exit 1): Unable to acquire lock. Most "
        "likely another DVC process"
    )
