"""Full, read-only and bind-mounted disks, and memory running out, under real stage processes.

The tests run as root, where ``chmod`` blocks nothing, so the faults are real mounts made in
a private mount namespace (``unshare -m``): a tiny tmpfs that fills up (ENOSPC), a read-only
bind mount (EROFS), a writable bind mount (rename across it fails with EXDEV although the
device is the same). The mounts vanish with the namespace, whatever happens to the test.
Each fault must end in one ``error:`` line naming the file and what to do, exit code 2, no
traceback, the previous output intact and no temporary left behind.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, capture, credit_only, error_lines

SNAPSHOT = "20251130"
TRAIN = f"credit-train_interim_{SNAPSHOT}.csv"
TEST = f"credit-test_interim_{SNAPSHOT}.csv"
PYTHON = sys.executable


def _can_mount() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = "mount -t tmpfs -o size=4k tmpfs /mnt 2>/dev/null || mount -t tmpfs tmpfs /tmp"
    proc = subprocess.run(["unshare", "-m", "sh", "-c", probe], capture_output=True, check=False)
    return proc.returncode == 0


pytestmark = pytest.mark.skipif(
    not _can_mount(), reason="needs `unshare -m` and mount rights (root in the container)"
)


def stage(module: str, root: Path, *args: str) -> list[str]:
    return [PYTHON, "-m", module, *args, "--root", str(root), "--params", str(root / "params.yaml")]


def stage_in_namespace(mounts: str, cmd: list[str], out: Path, after: str) -> tuple[int, str]:
    """(exit code, stderr) of the stage ``cmd`` run by a shell script in a private mount
    namespace, from the repository (so ``-m stages.x`` imports this checkout): ``mounts``
    first, then the stage, then ``after`` (which copies into ``out`` what the test checks:
    what it leaves in ``out`` outlives the namespace)."""
    out.mkdir(parents=True, exist_ok=True)
    script = f"""
{mounts}
set +e
{shlex.join(cmd)} 2> {out}/stderr
echo $? > {out}/rc
set -e
{after}
"""
    proc = capture(["unshare", "-m", "--propagation", "private", "sh", "-euc", script], timeout=300)
    assert proc.returncode == 0, proc.stderr
    return int((out / "rc").read_text()), (out / "stderr").read_text()


def md5s(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def temporaries(folder: Path) -> list[str]:
    return sorted(p.as_posix() for p in folder.rglob("*.tmp"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DVC-repository-like root (it has .dvc/) where ingest, split and featurize ran."""
    root = tmp_path_factory.mktemp("disk") / "project"
    (root / ".dvc").mkdir(parents=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    credit_only(params)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    for module in ("stages.ingest", "stages.split", "stages.featurize"):
        subprocess.run(stage(module, root, "--dataset", "credit"), cwd=REPO, check=True)
    return root


def test_full_disk_is_one_line_and_keeps_the_previous_output(project, tmp_path):
    """The whole repository on a full disk: the temporary in .dvc/tmp/tabml cannot be
    written; the error names the output, which keeps its previous content."""
    full, out = tmp_path / "full", tmp_path / "out"
    interim = full / "data" / "interim" / "credit"
    mounts = f"""
mkdir -p {full}
mount -t tmpfs -o size=32k tmpfs {full}
mkdir -p {full}/.dvc {interim}
cp {project}/params.yaml {full}/
ln -s {project}/data/raw {full}/data/raw
printf 'previous train\\n' > {interim}/{TRAIN}
printf 'previous test\\n' > {interim}/{TEST}
"""
    after = f"""
cp -r {interim} {out}/interim
find {full} -name '*.tmp' > {out}/temps
"""
    cmd = stage("stages.split", full, "--dataset", "credit")

    code, err = stage_in_namespace(mounts, cmd, out, after)

    assert code == 2, err
    assert "Traceback" not in err
    [line] = error_lines(err)  # the output directory split@credit writes, or a file in it
    assert line.startswith(f"error: cannot write {interim}"), line
    assert line.endswith(": no space left on device: free space and rerun"), line
    assert (out / "interim" / TRAIN).read_text() == "previous train\n"
    assert (out / "interim" / TEST).read_text() == "previous test\n"
    assert (out / "temps").read_text() == ""


def test_full_output_directory_keeps_the_previous_directory(project, tmp_path):
    """A directory output (featurize) on its own full disk: temporaries go beside it."""
    out = tmp_path / "out"
    processed = project / "data" / "processed"
    before = md5s(processed)
    mounts = f"""
cp -r {processed} {tmp_path}/previous
mount -t tmpfs -o size=64k tmpfs {processed}
mkdir -p {processed}/credit
printf 'previous\\n' > {processed}/credit/previous.csv
"""
    after = f"""
cp -r {processed} {out}/processed
find {processed} {project}/.dvc -name '*.tmp' > {out}/temps
"""
    cmd = stage("stages.featurize", project, "--dataset", "credit")

    code, err = stage_in_namespace(mounts, cmd, out, after)

    assert code == 2, err
    assert "Traceback" not in err
    [line] = error_lines(err)
    assert line.startswith(f"error: cannot write {processed / 'credit'}/credit-"), line
    assert line.endswith(": no space left on device: free space and rerun"), line
    assert list(md5s(out / "processed")) == ["credit/previous.csv"]
    assert (out / "processed" / "credit" / "previous.csv").read_text() == "previous\n"
    assert (out / "temps").read_text() == ""
    assert md5s(processed) == before  # outside the namespace nothing changed


@pytest.mark.parametrize(
    ("module", "folder", "named"),
    [
        ("stages.split", "data/interim", "data/interim/credit"),
        ("stages.featurize", "data/processed", "data/processed/credit"),
    ],
    ids=["split", "featurize"],
)
def test_read_only_output_directory_is_one_line_and_changes_nothing(
    project, tmp_path, module, folder, named
):
    out = tmp_path / "out"
    target = project / folder
    before = md5s(target)
    mounts = f"mount --bind {target} {target}\nmount -o remount,bind,ro {target}"
    cmd = stage(module, project, "--dataset", "credit")

    code, err = stage_in_namespace(mounts, cmd, out, f"find {project} -name '*.tmp' > {out}/temps")

    assert code == 2, err
    assert "Traceback" not in err
    assert error_lines(err) == [
        f"error: cannot write {project / named}: read-only file system: make it writable "
        "(or run in a writable copy of the repository) and rerun"
    ]
    assert md5s(target) == before
    assert (out / "temps").read_text() == ""


def test_bind_mounted_output_directory_works(project, tmp_path):
    """A container volume: same device, yet rename(2) into it fails with EXDEV, so the
    temporaries must be written beside the outputs."""
    out = tmp_path / "out"
    interim = project / "data" / "interim"
    before = md5s(interim)
    cmd = stage("stages.split", project, "--dataset", "credit")

    code, err = stage_in_namespace(
        f"mount --bind {interim} {interim}", cmd, out, f"find {project} -name '*.tmp' > {out}/temps"
    )

    assert code == 0, err
    assert error_lines(err) == []
    assert md5s(interim) == before  # rewritten with the same bytes
    assert (out / "temps").read_text() == ""


def test_running_out_of_memory_is_one_line_naming_the_stage(project):
    """numpy's own MemoryError (a subclass), from an allocation inside the stage body."""
    code = """
import sys
import numpy as np
from stages import split
def split_positions(target, spec, params):
    return np.ones((2**22, 2**20))  # 32 TiB: numpy raises _ArrayMemoryError
split.split_positions = split_positions
sys.exit(split.main(sys.argv[1:]))
"""
    args = stage("stages.split", project, "--dataset", "credit")[3:]
    before = md5s(project / "data" / "interim")

    proc = capture([PYTHON, "-c", code, *args])

    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert error_lines(proc.stderr) == [
        "error: stage split@credit ran out of memory: close other programs, lower the n_jobs "
        "settings in params.yaml or use a smaller dataset, and rerun"
    ]
    assert md5s(project / "data" / "interim") == before
    assert temporaries(project) == []
