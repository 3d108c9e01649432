"""File IO (tabml.files): atomic writes, directory swaps, readers with clear errors."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from ruamel.yaml import YAMLError

from tabml.errors import DataError, PipelineError
from tabml.files import (
    TEMP_HOME,
    TEMP_NAME,
    atomic_path,
    copy_file,
    file_stamp,
    json_text,
    md5_file,
    read_csv,
    read_json,
    read_pickle,
    read_yaml,
    remove_stale_temps,
    replace_dir,
    temp_home,
    write_csv,
    write_json,
    write_pickle,
    write_text,
)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- atomic writes ----------------------------------------------------------------------


def test_atomic_path_keeps_old_file_and_leaves_no_temp_on_error(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old", encoding="utf-8")

    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half written", encoding="utf-8")
        raise RuntimeError("boom")

    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_path_creates_nothing_on_error_when_no_old_file(tmp_path):
    target = tmp_path / "sub" / "out.csv"

    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_text("x", encoding="utf-8")
        raise ValueError

    assert list((tmp_path / "sub").iterdir()) == []


def test_atomic_path_replaces_on_success_and_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"

    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp != target
        tmp.write_text("new", encoding="utf-8")
        assert not target.exists()

    assert target.read_text(encoding="utf-8") == "new"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


@pytest.mark.usefixtures("umask_022")
def test_written_files_get_normal_permissions(tmp_path):
    write_text(tmp_path / "a.txt", "x")
    write_json(tmp_path / "b.json", {"a": 1})
    write_csv(tmp_path / "c.csv", pd.DataFrame({"a": [1]}))
    write_pickle(tmp_path / "d.pkl", {"a": 1})

    for name in ("a.txt", "b.json", "c.csv", "d.pkl"):
        assert mode(tmp_path / name) == 0o644, name


def test_write_json_is_deterministic_with_sorted_keys(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": {"z": 2, "y": 3}})
    write_json(tmp_path / "b.json", {"a": {"y": 3, "z": 2}, "b": 1})

    text = (tmp_path / "a.json").read_text(encoding="utf-8")
    assert text == (tmp_path / "b.json").read_text(encoding="utf-8")
    assert text.index('"a"') < text.index('"b"')
    assert text.index('"y"') < text.index('"z"')
    assert text.endswith("}\n")
    assert read_json(tmp_path / "a.json") == {"a": {"y": 3, "z": 2}, "b": 1}
    assert json.loads(text) == read_json(tmp_path / "b.json")


def test_json_text_is_what_write_json_writes(tmp_path):
    obj = {"b": [1, 2.5, None], "a": "é"}

    write_json(tmp_path / "x.json", obj)

    assert (tmp_path / "x.json").read_text(encoding="utf-8") == json_text(obj)
    assert json_text(obj) == json_text(dict(reversed(obj.items())))
    assert json_text(obj).endswith("}\n")


def test_write_csv_has_no_index_and_round_trips(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None]}, index=[10, 11])

    write_csv(tmp_path / "f.csv", frame)

    assert (tmp_path / "f.csv").read_text(encoding="utf-8").splitlines()[0] == "a,b"
    back = read_csv(tmp_path / "f.csv")
    assert back["a"].tolist() == [1, 2]
    assert back["b"].iloc[0] == "x" and pd.isna(back["b"].iloc[1])


def test_write_csv_uses_unix_line_endings(tmp_path):
    write_csv(tmp_path / "f.csv", pd.DataFrame({"a": [1, 2]}))

    assert (tmp_path / "f.csv").read_bytes() == b"a\n1\n2\n"


def test_pickle_round_trip(tmp_path):
    write_pickle(tmp_path / "m.pkl", {"weights": [1.5, 2.5]})

    assert read_pickle(tmp_path / "m.pkl") == {"weights": [1.5, 2.5]}


@pytest.mark.parametrize("reader", [read_csv, read_pickle, read_json])
def test_reading_a_missing_upstream_output_names_it(tmp_path, reader):
    path = tmp_path / "data" / "raw" / "x_raw_20251130.csv"

    with pytest.raises(PipelineError) as info:
        reader(path)

    assert str(path) in str(info.value) and "run the stage" in str(info.value)


# --- md5 and YAML -----------------------------------------------------------------------


def test_md5_file_is_the_md5_of_the_bytes(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"tabular\n")

    assert md5_file(tmp_path / "f.bin") == hashlib.md5(b"tabular\n").hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert md5_file(tmp_path / "empty") == "d41d8cd98f00b204e9800998ecf8427e"


def test_md5_file_over_several_blocks(tmp_path):
    data = os.urandom((1 << 20) * 2 + 17)
    (tmp_path / "big.bin").write_bytes(data)

    assert md5_file(tmp_path / "big.bin") == hashlib.md5(data).hexdigest()


def test_read_yaml_is_yaml_1_2_like_dvc(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(
        "a: yes\nb: no\nc: on\nd: true\ne: 010\nf: '20251130'\ng: 20251130\nh: null\n",
        encoding="utf-8",
    )

    assert read_yaml(path) == {
        "a": "yes",
        "b": "no",
        "c": "on",
        "d": True,
        "e": 10,
        "f": "20251130",
        "g": 20251130,
        "h": None,
    }


def test_read_yaml_builds_plain_data_only(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("a: !!python/object/apply:os.system ['true']\n", encoding="utf-8")

    with pytest.raises(YAMLError):
        read_yaml(path)


def test_read_yaml_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        read_yaml(tmp_path / "nope.yaml")


# --- replace_dir ------------------------------------------------------------------------


@pytest.mark.usefixtures("umask_022")
def test_replace_dir_swaps_directory_and_removes_stale_files(tmp_path):
    out = tmp_path / "processed"
    out.mkdir()
    (out / "stale.csv").write_text("old", encoding="utf-8")
    (out / "keep.csv").write_text("old", encoding="utf-8")

    def write(tmp: Path) -> None:
        assert tmp != out and tmp.parent == out.parent
        write_text(tmp / "keep.csv", "new")
        write_text(tmp / "sub" / "deep.csv", "new")

    replace_dir(out, write)

    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "keep.csv",
        "sub",
        "sub/deep.csv",
    ]
    assert (out / "keep.csv").read_text(encoding="utf-8") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed"]  # no temp/old dirs
    assert mode(out) == 0o755


def test_replace_dir_creates_missing_directory(tmp_path):
    out = tmp_path / "metrics" / "test"

    replace_dir(out, lambda tmp: write_json(tmp / "a.json", {"x": 1}))

    assert read_json(out / "a.json") == {"x": 1}


def test_replace_dir_keeps_old_directory_when_writer_raises(tmp_path):
    out = tmp_path / "processed"
    out.mkdir()
    (out / "model.pkl").write_text("old", encoding="utf-8")

    def write(tmp: Path) -> None:
        write_text(tmp / "model.pkl", "half")
        raise DataError("bad input")

    with pytest.raises(DataError, match="bad input"):
        replace_dir(out, write)

    assert [p.name for p in out.iterdir()] == ["model.pkl"]
    assert (out / "model.pkl").read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed"]


def test_replace_dir_puts_the_old_directory_back_when_the_swap_fails(tmp_path, monkeypatch):
    out = tmp_path / "processed"
    out.mkdir()
    (out / "model.pkl").write_text("old", encoding="utf-8")
    real_replace = os.replace
    failed = []

    def replace(src, dst):
        if Path(dst) == out and not failed:  # moving the new directory into place
            failed.append(src)
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(src), None, str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)

    with pytest.raises(OSError) as info:
        replace_dir(out, lambda tmp: write_text(tmp / "model.pkl", "new"))

    monkeypatch.undo()
    assert info.value.filename == str(out)
    assert (out / "model.pkl").read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed"]


# --- temporary names: hidden from DVC (.dvcignore), named after the output in errors -----


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    """A directory DVC would call a repository (it has a .dvc directory)."""
    (tmp_path / ".dvc").mkdir()
    return tmp_path


def test_temp_names_carry_the_pid_and_match_the_pattern(tmp_path):
    seen = []

    with atomic_path(tmp_path / "rf_credit_v1.pkl") as tmp:
        seen.append(tmp)

    replace_dir(tmp_path / "credit", lambda tmp: seen.append(tmp))

    for path, name in zip(seen, ("rf_credit_v1.pkl", "credit"), strict=True):
        match = TEMP_NAME.fullmatch(path.name)
        assert match is not None, path.name
        assert (match["name"], int(match["pid"])) == (name, os.getpid())
        assert path.name.startswith(".") and path.name.endswith(".tmp")


def test_in_a_dvc_repository_temps_are_written_out_of_every_output_directory(dvc_repo):
    """A kill -9 leaves them in .dvc/tmp/tabml: no directory DVC hashes, nothing git shows."""
    seen = []
    target = dvc_repo / "models" / "rf_credit_v1.pkl"

    with atomic_path(target) as tmp:
        seen.append(tmp)
        tmp.write_text("model", encoding="utf-8")

    def write(tmp: Path) -> None:
        seen.append(tmp)
        write_text(tmp / "sub" / "a.csv", "a")

    replace_dir(dvc_repo / "data" / "processed" / "credit", write)
    replace_dir(dvc_repo / "data" / "processed" / "credit", write)  # again, over the old one

    home = dvc_repo / TEMP_HOME
    assert temp_home(dvc_repo / "data" / "processed") == home
    assert temp_home(dvc_repo.parent) is None
    assert [tmp.parent for tmp in seen] == [home, home, home]
    assert target.read_text(encoding="utf-8") == "model"
    assert (dvc_repo / "data" / "processed" / "credit" / "sub" / "a.csv").exists()
    assert list(home.iterdir()) == []
    assert sorted(p.name for p in (dvc_repo / "data" / "processed").iterdir()) == ["credit"]
    assert [p.name for p in (dvc_repo / "models").iterdir()] == ["rf_credit_v1.pkl"]


def test_temps_go_beside_the_output_when_renaming_from_the_repository_fails(dvc_repo, monkeypatch):
    """rename(2) cannot cross file systems or bind mounts (EXDEV): a data/ on another disk,
    a container volume."""
    real_replace = os.replace
    target = dvc_repo / "data" / "interim" / "x.csv"

    def replace(src, dst):
        if Path(src).parent == dvc_repo / TEMP_HOME:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src), None, str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)

    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        tmp.write_text("x", encoding="utf-8")

    assert target.read_text(encoding="utf-8") == "x"
    assert [p.name for p in target.parent.iterdir()] == ["x.csv"]
    assert list((dvc_repo / TEMP_HOME).iterdir()) == []


@pytest.mark.parametrize("in_repo", [False, True], ids=["plain", "dvc-repo"])
def test_atomic_path_names_the_output_when_a_write_fails(tmp_path, in_repo):
    if in_repo:
        (tmp_path / ".dvc").mkdir()
    target = tmp_path / "out.csv"
    target.write_text("old", encoding="utf-8")

    with pytest.raises(OSError) as info, atomic_path(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a full disk raises it

    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(target)
    assert target.read_text(encoding="utf-8") == "old"
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p != target]
    assert leftovers == []


@pytest.mark.parametrize("in_repo", [False, True], ids=["plain", "dvc-repo"])
def test_atomic_path_names_the_output_when_the_temp_cannot_be_created(
    tmp_path, monkeypatch, in_repo
):
    if in_repo:
        (tmp_path / ".dvc").mkdir()
    target = tmp_path / "out.csv"
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if tmp_path in Path(path).parents:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)

    with pytest.raises(OSError) as info, atomic_path(target):
        pass

    assert info.value.errno == errno.EROFS
    assert info.value.filename == str(target)


def test_atomic_path_names_the_output_when_the_move_fails(dvc_repo, monkeypatch):
    target = dvc_repo / "out.csv"

    def replace(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(src), None, str(dst))

    monkeypatch.setattr(os, "replace", replace)

    with pytest.raises(OSError) as info, atomic_path(target) as tmp:
        tmp.write_text("x", encoding="utf-8")

    assert (info.value.filename, info.value.filename2) == (str(target), str(target))


@pytest.mark.parametrize("in_repo", [False, True], ids=["plain", "dvc-repo"])
def test_replace_dir_names_the_final_file_when_a_write_fails(tmp_path, in_repo):
    if in_repo:
        (tmp_path / ".dvc").mkdir()
    out = tmp_path / "processed"

    def write(tmp: Path) -> None:
        with atomic_path(tmp / "sub" / "x.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as info:
        replace_dir(out, write)

    assert info.value.filename == str(out / "sub" / "x.csv")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert not out.exists()


# --- stale temporary files of killed runs -----------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_remove_stale_temps_removes_only_ours_from_dead_processes(tmp_path):
    dead, alive = dead_pid(), os.getppid()
    models, data = tmp_path / "models", tmp_path / "data" / "interim"
    models.mkdir()
    data.mkdir(parents=True)
    stale_file = models / f".rf_credit_v1.pkl.{dead}-abcdefgh.tmp"
    stale_dir = tmp_path / "data" / f".processed.{dead}-x1y2z3__.tmp"
    own = data / f".credit-train_interim_20251130.csv.{os.getpid()}-abcdefgh.tmp"
    live = models / f".lr_credit_v1.pkl.{alive}-abcdefgh.tmp"  # another run writing now
    lookalikes = [
        models / ".notes.tmp",
        models / f"rf.pkl.{dead}-abcdefgh.tmp",
        models / f".rf.pkl.{dead}-abc.tmp",
        models / "rf_credit_v1.pkl",
    ]
    for path in (stale_file, own, live, *lookalikes):
        path.write_text("x", encoding="utf-8")
    stale_dir.mkdir()
    (stale_dir / "credit-train.csv").write_text("x", encoding="utf-8")

    removed = remove_stale_temps([tmp_path / "data", models, tmp_path / "missing"])

    assert sorted(removed) == sorted([stale_file, stale_dir, own])
    assert not stale_file.exists() and not stale_dir.exists() and not own.exists()
    assert live.exists()
    assert all(path.exists() for path in lookalikes)


def test_remove_stale_temps_of_a_clean_tree_removes_nothing(tmp_path):
    write_json(tmp_path / "metrics" / "test" / "a.json", {"x": 1})

    assert remove_stale_temps([tmp_path / "metrics"]) == []
    assert read_json(tmp_path / "metrics" / "test" / "a.json") == {"x": 1}


def test_write_csv_quotes_text_holding_a_bare_carriage_return(tmp_path):
    """Python's csv writer leaves a bare "\\r" unquoted, and readers split the row there."""
    frame = pd.DataFrame({"note": ["x\ry", "plain", None], "value": [1.5, -2.0, None]})

    write_csv(tmp_path / "f.csv", frame)
    back = pd.read_csv(tmp_path / "f.csv")

    assert back.shape == (3, 2)
    assert back["note"].tolist()[:2] == ["x\ry", "plain"]
    assert back["value"].tolist()[:2] == [1.5, -2.0]
    assert back.isna().sum().tolist() == [1, 1]


def test_write_csv_without_carriage_returns_quotes_minimally(tmp_path):
    write_csv(tmp_path / "f.csv", pd.DataFrame({"a": ["x", "y,z"], "b": [1, 2]}))

    assert (tmp_path / "f.csv").read_text() == 'a,b\nx,1\n"y,z",2\n'


# --- copies and CSV options --------------------------------------------------------------


def test_copy_file_copies_the_bytes_atomically_with_normal_permissions(tmp_path, umask_022):
    source = tmp_path / "external" / "src.csv"
    source.parent.mkdir()
    source.write_bytes(b"a;b\r\n1;\xc3\xa9\r\n")
    source.chmod(0o600)
    dest = tmp_path / "data" / "raw" / "x_raw_20251130.csv"

    copy_file(source, dest)

    assert dest.read_bytes() == source.read_bytes()
    assert mode(dest) == 0o644
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]


def test_copy_file_refuses_a_source_that_changed_since_it_was_read(tmp_path):
    source = tmp_path / "src.csv"
    source.write_bytes(b"a,y\n1,yes\n")
    stamp = file_stamp(source)
    source.write_bytes(b"a,y\n1,yes\n2,no\n")  # edited after it was checked
    dest = tmp_path / "raw.csv"
    dest.write_bytes(b"old")

    with pytest.raises(PipelineError) as info:
        copy_file(source, dest, stamp=stamp)

    assert str(info.value) == f"{source} changed while it was read: run the stage again"
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.csv", "src.csv"]


def test_write_csv_with_another_separator_and_quoted_text(tmp_path):
    frame = pd.DataFrame({"a": [1.5, None], "b": [" x", None]})

    write_csv(tmp_path / "f.csv", frame, sep=";", quote_text=True)

    assert (tmp_path / "f.csv").read_bytes() == b'"a";"b"\n1.5;" x"\n"";""\n'
    back = pd.read_csv(tmp_path / "f.csv", sep=";", skipinitialspace=True)
    assert back["a"].dtype == "float64" and back["b"].tolist()[0] == " x"
    assert back.isna().sum().tolist() == [1, 1]
