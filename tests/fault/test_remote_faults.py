"""tools/remote.py under faults (issue 8 items 1, 6, 8): a tampered object in the remote, data
never pushed, and settings botocore cannot use each end in one ``error:`` line that names the
file or setting and what to do, never a traceback or a credential.

Small repositories (a tracked file, a tracked directory and a pipeline output) with a local
remote, as the project's committed default remote is: real git, dvc and tools.remote.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, dvc, git, run

OBJECTS = "files/md5"


def remote_tool(*args: str, cwd: Path):
    return run([sys.executable, "-m", "tools.remote", *args], cwd, check=False)


def error_line(proc) -> str:
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output, output
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and proc.stderr.splitlines()[-1] == errors[0], output
    return errors[0]


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=path)
    git("config", "user.name", "fault-test", cwd=path)
    git("config", "user.email", "fault-test@example.invalid", cwd=path)
    dvc("init", "-q", cwd=path)
    shutil.copytree(REPO / "tools", path / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    return path


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<tmp>/repo, pushed to its default local remote <tmp>/storage (a relative url, as the
    project's), holding a.txt and b.txt (.dvc), d/ (a directory .dvc) and out.txt (dvc.lock).
    Built once: tests work on copies (:func:`shared`)."""
    repo = new_repo(tmp_path_factory.mktemp("origin") / "repo")
    (repo / "a.txt").write_text("hello\n")
    (repo / "b.txt").write_text("fine\n")
    (repo / "d").mkdir()
    (repo / "d" / "x").write_text("x1\n")
    (repo / "d" / "y").write_text("x2\n")
    dvc("add", "-q", "a.txt", "b.txt", "d", cwd=repo)
    dvc("stage", "add", "-q", "-n", "make", "-o", "out.txt", "echo made > out.txt", cwd=repo)
    dvc("repro", "-q", cwd=repo)
    dvc("remote", "add", "-q", "-d", "storage", "../storage", cwd=repo)  # from the cwd
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "data", cwd=repo)
    dvc("push", "-q", cwd=repo)
    return repo.parent


@pytest.fixture
def shared(origin: Path, tmp_path: Path) -> Path:
    """A private copy of the origin repository and its remote, side by side."""
    return Path(shutil.copytree(origin, tmp_path / "origin", symlinks=True)) / "repo"


def clone(repo: Path) -> Path:
    copy = repo.parent / "clone"
    git("clone", "-q", str(repo), str(copy), cwd=repo.parent)
    return copy


def md5_of(repo: Path, path: str) -> str:
    if path.endswith(".txt") and (repo / f"{path}.dvc").exists():
        return yaml.safe_load((repo / f"{path}.dvc").read_text())["outs"][0]["md5"]
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return next(o["md5"] for s in lock["stages"].values() for o in s["outs"] if o["path"] == path)


def obj(storage: Path, md5: str) -> Path:
    return storage / OBJECTS / md5[:2] / md5[2:]


def test_tampered_objects_are_refused_naming_their_files(shared: Path) -> None:
    storage = shared.parent / "storage"
    copy = clone(shared)
    x_md5 = dvc("ls", ".", "d", "--show-hash", "--json", cwd=shared).stdout
    x_md5 = next(e["md5"] for e in yaml.safe_load(x_md5) if e["path"] == "x")
    tampered = {
        "a.txt": md5_of(shared, "a.txt"),
        "d/x": x_md5,
        "out.txt": md5_of(shared, "out.txt"),
    }
    # Two ways DVC meets a bad object in a local remote: one that kept the read-only mode DVC
    # gives objects is trusted by name and downloaded, then dropped by ``verify``; one that
    # lost it is re-hashed while DVC checks what the remote holds, and deleted there.
    for name, md5 in tampered.items():
        obj(storage, md5).chmod(0o644)
        obj(storage, md5).write_text("evil\n")
        if name != "d/x":
            obj(storage, md5).chmod(0o444)

    proc = remote_tool("pull", cwd=copy)

    assert proc.returncode == 1
    line = error_line(proc)
    assert line.startswith(
        "error: dvc pull from remote 'storage' failed: a.txt, d/x, out.txt failed the hash check"
    )
    for md5 in tampered.values():
        assert str(obj(storage, md5)) in line
    assert "make push" in line and "remote-check" not in line
    # Nothing of the bad copies reached the workspace or the cache; the good file did.
    assert not (copy / "a.txt").exists() and not (copy / "out.txt").exists()
    assert not (copy / "d").exists()  # dvc checks out a directory whole or not at all
    assert (copy / "b.txt").read_text() == "fine\n"
    cached = [p.read_text() for p in (copy / ".dvc" / "cache").rglob("*") if p.is_file()]
    assert "evil\n" not in cached
    assert "verify = true" in (copy / ".dvc" / "config.local").read_text()


def test_objects_never_pushed_are_named(shared: Path) -> None:
    (shared / "late.txt").write_text("not pushed\n")
    dvc("add", "-q", "late.txt", cwd=shared)
    git("add", "-A", cwd=shared)
    git("commit", "-qm", "late", cwd=shared)
    copy = clone(shared)

    proc = remote_tool("pull", cwd=copy)

    assert proc.returncode == 1
    line = error_line(proc)
    assert line.startswith(
        "error: dvc pull from remote 'storage' failed: late.txt was never pushed"
    )
    assert "make push" in line and "remote-check" not in line
    assert (copy / "a.txt").read_text() == "hello\n"  # the rest was pulled


def test_a_good_pull_still_works_and_says_nothing_wrong(shared: Path) -> None:
    copy = clone(shared)
    proc = remote_tool("pull", cwd=copy)
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr.lower()
    assert (copy / "out.txt").read_text() == "made\n"
    assert "up to date" in dvc("status", cwd=copy).stdout


CREDENTIALS = "AWS_ACCESS_KEY_ID=AKIAFAULTTEST0000\nAWS_SECRET_ACCESS_KEY=s3cr3t-fault-value\n"


@pytest.mark.parametrize(
    ("settings", "pieces"),
    [
        ("DVC_S3_BUCKET=Bad_Bucket!\n", ["DVC_S3_BUCKET is 'Bad_Bucket!': not a valid S3 bucket"]),
        (
            "DVC_S3_BUCKET=b\nAWS_ENDPOINT_URL=not a url\n",
            ["AWS_ENDPOINT_URL is 'not a url': not an http(s) URL"],
        ),
        (
            "DVC_S3_BUCKET=b\nAWS_ENDPOINT_URL=http://user:pa55word@127.0.0.1:9\n",
            ["AWS_ENDPOINT_URL is 'http://***@127.0.0.1:9': it holds a credential"],
        ),
    ],
    ids=["bucket", "not-a-url", "credential-in-url"],
)
def test_configure_s3_refuses_unusable_settings(tmp_path: Path, settings: str, pieces) -> None:
    repo = new_repo(tmp_path / "repo")
    (repo / ".env").write_text(CREDENTIALS + settings)
    proc = remote_tool("configure-s3", cwd=repo)
    assert proc.returncode == 2
    line = error_line(proc)
    for piece in pieces:
        assert piece in line
    output = proc.stdout + proc.stderr
    assert "pa55word" not in output and "s3cr3t-fault-value" not in output
    assert not (repo / ".dvc" / "config.local").exists()


def test_hand_configured_remote_with_bad_settings_is_one_line(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    (repo / ".env").write_text(CREDENTIALS)
    dvc("remote", "add", "--local", "bad", "s3://Bad_Bucket!/x", cwd=repo)
    dvc("remote", "add", "--local", "leaky", "s3://fine/x", cwd=repo)
    dvc("remote", "modify", "--local", "leaky", "endpointurl", "http://u:pa55word@h:1", cwd=repo)
    for name, piece in (
        ("bad", "the bucket of DVC remote 'bad' is 'Bad_Bucket!': not a valid S3 bucket name"),
        (
            "leaky",
            "the endpointurl of DVC remote 'leaky' is 'http://***@h:1': it holds a credential",
        ),
    ):
        for command in ("check", "pull"):
            proc = remote_tool(command, "--remote", name, cwd=repo)
            assert proc.returncode == 2
            assert piece in error_line(proc)
            assert "pa55word" not in proc.stdout + proc.stderr
