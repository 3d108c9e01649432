"""Share data and models through DVC remotes: a local folder and a real S3 server.

Round trips: run the pipeline, push, clone, pull; every output must match dvc.lock and
`dvc repro` must then run nothing. Bad remotes must fail with one clear line that never
shows a credential.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import dvc, free_ports, git, ran_stages, run
from tests.remote.conftest import ACCESS_KEY, SECRET_KEY, s3_env, write_env
from tests.remote.s3server import SeaweedS3

pytestmark = pytest.mark.remote


def remote_tool(*args: str, cwd: Path, check: bool = True):
    return run([sys.executable, "-m", "tools.remote", *args], cwd, check=check)


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assert_matches_lock(repo: Path) -> int:
    """Every file output has the md5 recorded in dvc.lock; directories are checked by dvc."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    checked = 0
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            path = repo / out["path"]
            assert path.exists(), f"{out['path']} missing after pull"
            if not out["md5"].endswith(".dir"):
                assert md5(path) == out["md5"], out["path"]
                checked += 1
    assert "up to date" in dvc("status", cwd=repo).stdout
    return checked


def clone(source: Path, dest: Path) -> Path:
    git("clone", "-q", str(source), str(dest), cwd=source.parent)
    git("config", "user.name", "remote-test", cwd=dest)
    git("config", "user.email", "remote-test@example.invalid", cwd=dest)
    return dest


def test_local_default_remote_round_trip(project: Path) -> None:
    """The committed default remote works right after cloning, with no configuration."""
    assert "Everything is up to date" not in dvc("push", cwd=project).stdout + "x"
    assert (project.parent / "dvc-storage" / "files" / "md5").is_dir()
    copy = clone(project, project.parent / "clone-local")
    dvc("pull", cwd=copy)
    assert assert_matches_lock(copy) >= 2 + 3  # raw and interim CSVs, 3 models
    assert ran_stages(dvc("repro", cwd=copy).stdout) == set()
    assert "in sync" in dvc("status", "--cloud", cwd=copy).stdout
    assert git("status", "--porcelain", cwd=copy).stdout == ""


def test_s3_round_trip_with_env_file(project: Path, s3: SeaweedS3) -> None:
    write_env(project, **s3_env(s3, "roundtrip"))
    configured = remote_tool("configure-s3", cwd=project)
    assert "reachable" in configured.stderr
    assert (project / ".dvc" / "config.local").read_text().count("s3://dvc-test/roundtrip") == 1
    assert SECRET_KEY not in (project / ".dvc" / "config.local").read_text()
    pushed = remote_tool("push", cwd=project)
    assert "pushed" in pushed.stdout
    assert SECRET_KEY not in pushed.stdout + pushed.stderr

    copy = clone(project, project.parent / "clone-s3")
    shutil.copy(project / ".env", copy / ".env")
    remote_tool("configure-s3", cwd=copy)
    remote_tool("pull", cwd=copy)
    assert assert_matches_lock(copy) >= 5
    assert ran_stages(dvc("repro", cwd=copy).stdout) == set()
    status = remote_tool("status", cwd=copy)
    assert "in sync" in status.stdout
    assert git("status", "--porcelain", cwd=copy).stdout == ""  # .env and config.local ignored


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"AWS_SECRET_ACCESS_KEY": "wrong-" + SECRET_KEY}, "rejected the credentials"),
        ({"AWS_ACCESS_KEY_ID": "AKIAUNKNOWNKEY0000"}, "rejected the credentials"),
        ({"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, "no AWS credentials"),
        ({"DVC_S3_BUCKET": "no-such-bucket"}, "bucket 'no-such-bucket' does not exist"),
        (
            {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_ports(1)[0]}"},
            "cannot reach the S3 endpoint",
        ),
    ],
    ids=["wrong-secret", "unknown-key", "no-credentials", "missing-bucket", "unreachable"],
)
def test_bad_s3_remote_fails_with_one_clear_line(
    project: Path, s3: SeaweedS3, overrides: dict[str, str], message: str
) -> None:
    write_env(project, **{**s3_env(s3, "errors"), **overrides})
    try:
        # configure-s3 writes the remote, then checks it; push checks again before dvc runs.
        for command in ("configure-s3", "push"):
            proc = remote_tool(command, cwd=project, check=False)
            output = proc.stdout + proc.stderr
            assert proc.returncode == 2, output
            errors = [line for line in output.splitlines() if line.startswith("error:")]
            assert len(errors) == 1 and message in errors[0], output
            for secret in {SECRET_KEY, overrides.get("AWS_SECRET_ACCESS_KEY")} - {None, ""}:
                assert secret not in output
            assert "Traceback" not in output
    finally:
        (project / ".env").unlink()
        dvc("remote", "default", "--local", "--unset", cwd=project)


def test_large_file_survives_s3_round_trip_byte_for_byte(tmp_path: Path, s3: SeaweedS3) -> None:
    """110 MB: above s3fs's multipart threshold, so the upload is multipart."""
    repo = tmp_path / "big"
    repo.mkdir()
    git("init", "-q", cwd=repo)
    dvc("init", "-q", cwd=repo)
    shutil.copytree(Path(__file__).resolve().parents[2] / "tools", repo / "tools")
    big = repo / "big.bin"
    digest = hashlib.sha256()
    with big.open("wb") as handle:
        for _ in range(110):
            block = os.urandom(1 << 20)
            digest.update(block)
            handle.write(block)
    dvc("add", "big.bin", cwd=repo)
    write_env(repo, **s3_env(s3, "big"))
    remote_tool("configure-s3", cwd=repo)
    remote_tool("push", cwd=repo)
    big.unlink()
    shutil.rmtree(repo / ".dvc" / "cache")
    remote_tool("pull", cwd=repo)
    with big.open("rb") as handle:
        pulled = hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 20), b""):
            pulled.update(block)
    assert big.stat().st_size == 110 << 20
    assert pulled.hexdigest() == digest.hexdigest()


def test_secret_never_reaches_tracked_files(project: Path, s3: SeaweedS3) -> None:
    write_env(project, **s3_env(s3, "tracked"))
    try:
        remote_tool("configure-s3", cwd=project)
        tracked = git("ls-files", cwd=project).stdout.split()
        assert ".env" not in tracked and ".dvc/config.local" not in tracked
        for rel in tracked:
            path = project / rel
            if path.is_file():
                data = path.read_bytes()
                assert SECRET_KEY.encode() not in data and ACCESS_KEY.encode() not in data, rel
    finally:
        (project / ".env").unlink()
        dvc("remote", "default", "--local", "--unset", cwd=project)


def test_experiment_shared_through_git_and_dvc_remotes(project: Path) -> None:
    """dvc exp push to a git remote (code, params, metrics) with data in the DVC remote."""
    origin = project.parent / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=project.parent)
    git("remote", "add", "origin", str(origin), cwd=project)
    git("push", "-q", "origin", "HEAD:main", cwd=project)
    dvc("exp", "run", "-n", "lr-c05", "-S", "train.lr.C=0.5", cwd=project)
    dvc("exp", "push", "origin", "lr-c05", cwd=project)  # also pushes its data (default remote)

    teammate = clone(origin, project.parent / "teammate")
    dvc("exp", "pull", "origin", "lr-c05", cwd=teammate)
    assert "lr-c05" in dvc("exp", "list", cwd=teammate).stdout
    dvc("exp", "apply", "lr-c05", cwd=teammate)
    params = yaml.safe_load((teammate / "params.yaml").read_text())
    assert params["train"]["lr"]["C"] == 0.5
    dvc("checkout", cwd=teammate)
    assert "up to date" in dvc("status", cwd=teammate).stdout
    git("checkout", "--", ".", cwd=project)
    dvc("checkout", "--force", cwd=project)


def test_tampered_s3_object_is_refused_naming_its_file(tmp_path: Path, s3: SeaweedS3) -> None:
    """S3 answers whether an object exists without DVC hashing it, so the bad bytes are
    downloaded; ``verify`` (set by configure-s3) drops them and the last line names the file
    and the object's key. The object stays in the bucket for the user to replace."""
    import botocore.session

    repo = tmp_path / "tamper"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    dvc("init", "-q", cwd=repo)
    shutil.copytree(Path(__file__).resolve().parents[2] / "tools", repo / "tools")
    (repo / "good.txt").write_text("good\n")
    (repo / "bad.txt").write_text("original\n")
    dvc("add", "-q", "good.txt", "bad.txt", cwd=repo)
    write_env(repo, **s3_env(s3, "tamper"))
    remote_tool("configure-s3", cwd=repo)
    remote_tool("push", cwd=repo)
    bad = yaml.safe_load((repo / "bad.txt.dvc").read_text())["outs"][0]["md5"]
    key = f"tamper/files/md5/{bad[:2]}/{bad[2:]}"
    client = botocore.session.Session().create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=s3.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    client.put_object(Bucket="dvc-test", Key=key, Body=b"tampered\n")
    for name in ("good.txt", "bad.txt"):
        (repo / name).unlink()
    shutil.rmtree(repo / ".dvc" / "cache")

    proc = remote_tool("pull", cwd=repo, check=False)

    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output, output
    assert SECRET_KEY not in output and ACCESS_KEY not in output
    line = proc.stderr.splitlines()[-1]
    assert line.startswith("error: dvc pull from remote 's3' failed: bad.txt failed the hash check")
    assert f"s3://dvc-test/{key}" in line and "make push" in line
    assert not (repo / "bad.txt").exists()
    assert (repo / "good.txt").read_text() == "good\n"
    cached = [p.read_bytes() for p in (repo / ".dvc" / "cache").rglob("*") if p.is_file()]
    assert b"tampered\n" not in cached


def test_pull_of_a_directory_never_pushed_says_so_not_remote_check(
    project: Path, s3: SeaweedS3
) -> None:
    """Issue 10: a stage's output never pushed, here split@credit's directory (only
    ingest@credit was pushed). DVC cannot read the listing of a directory it does not have,
    so `dvc status --cloud` calls the clone "in sync" and the pull used to end in "`make
    remote-check` tells whether the remote is usable", which then said all was well. The line
    names the directory, how many objects are missing and what to do."""
    write_env(project, **s3_env(s3, "partial"))
    try:
        remote_tool("configure-s3", cwd=project)
        remote_tool("push", "ingest@credit", cwd=project)
        copy = clone(project, project.parent / "clone-partial")
        for name in (".env", ".dvc/config.local"):  # what `make remote-s3` writes there
            shutil.copy(project / name, copy / name)
        assert "is reachable" in remote_tool("check", cwd=copy).stderr
        # Targets keep it small; `make pull` (all of them) fails the same way.
        proc = remote_tool("pull", "ingest@credit", "split@credit", cwd=copy, check=False)
    finally:
        (project / ".env").unlink()
        dvc("remote", "default", "--local", "--unset", cwd=project)

    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output, output
    assert SECRET_KEY not in output and ACCESS_KEY not in output
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == proc.stderr.splitlines()[-1], output
    assert errors[0] == (
        "error: dvc pull from remote 's3' failed: data/interim/credit was never pushed "
        "(1 object is in neither the remote nor the local cache): run the pipeline and "
        "`make push` on the machine that produced it, or `make repro` here to rebuild it"
    )
    # What was pushed came down.
    assert len(list((copy / "data" / "raw").glob("credit_raw_*.csv"))) == 1
    assert not (copy / "data" / "interim" / "credit").exists()
