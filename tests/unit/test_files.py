"""File IO (tabml.files): atomic writes, directory swaps, readers with clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from ruamel.yaml import YAMLError

from tabml.errors import DataError, PipelineError
from tabml.files import (
    atomic_path,
    json_text,
    md5_file,
    read_csv,
    read_json,
    read_pickle,
    read_yaml,
    replace_dir,
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
