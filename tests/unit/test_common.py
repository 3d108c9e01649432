"""Shared plumbing: path naming rules, atomic writes, directory swaps and the stage CLI."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from stages.common import (
    DATA_NAME_RE,
    FIGURE_NAME_RE,
    MODEL_NAME_RE,
    Layout,
    atomic_path,
    read_csv,
    read_json,
    read_pickle,
    replace_dir,
    run_stage,
    stage_parser,
    write_csv,
    write_json,
    write_pickle,
    write_text,
)
from stages.errors import DataError, PipelineError
from tests.unit.conftest import PARAMS_FILE, project_params, write_params

DATE = "20251130"


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- Layout -----------------------------------------------------------------------------


def test_data_paths_follow_naming_convention():
    layout = Layout(Path("/repo"))

    raw = DATA_NAME_RE.match(layout.raw("credit", DATE).name)
    interim = DATA_NAME_RE.match(layout.interim("credit", "train", DATE).name)
    processed = DATA_NAME_RE.match(layout.processed("credit", "test", DATE).name)
    bundle = DATA_NAME_RE.match(layout.processed("credit", "transformer", DATE, "pkl").name)

    assert raw and raw["dataset"] == "credit" and raw["phase"] == "raw" and raw["part"] is None
    assert interim and interim["part"] == "train" and interim["phase"] == "interim"
    assert processed and processed["phase"] == "processed" and processed["ext"] == "csv"
    assert bundle and bundle["part"] == "transformer" and bundle["ext"] == "pkl"
    assert raw["date"] == interim["date"] == processed["date"] == DATE


def test_data_files_sit_in_their_phase_directory():
    layout = Layout(Path("/repo"))

    assert layout.raw("credit", DATE).parent == Path("/repo/data/raw")
    assert layout.interim("credit", "test", DATE).parent == Path("/repo/data/interim")
    assert layout.processed("credit", "train", DATE).parent == layout.processed_dir("credit")
    assert layout.processed_dir("credit") == Path("/repo/data/processed/credit")


def test_model_path_follows_naming_convention():
    path = Layout(Path("/repo")).model("xgb", "churn", 3)

    match = MODEL_NAME_RE.match(path.name)
    assert path.parent == Path("/repo/models")
    assert match and (match["algo"], match["dataset"], match["version"]) == ("xgb", "churn", "3")


def test_figure_and_plot_data_paths_follow_naming_convention():
    layout = Layout(Path("/repo"))

    figure = FIGURE_NAME_RE.match(layout.figure("roc", "credit", DATE).name)
    data_path = layout.plot_data("calibration", "credit", "rf", DATE)
    data = FIGURE_NAME_RE.match(data_path.name)

    assert figure and figure["topic"] == "roc" and figure["ext"] == "png"
    assert data and data["topic"] == "calibration" and data["part"] == "rf"
    assert data["ext"] == "csv"
    assert data_path.parent == layout.plot_data_dir / "calibration"


def test_metrics_paths():
    layout = Layout(Path("/repo"))

    assert layout.test_metrics("credit", "rf") == Path("/repo/metrics/test/credit-rf.json")
    assert layout.leaderboard("credit") == Path("/repo/metrics/leaderboard/credit.json")
    assert layout.train_metrics_dir("credit", "xgb") == Path("/repo/metrics/train/credit-xgb")


@pytest.mark.parametrize(
    "name",
    [
        "Credit_raw_20251130.csv",
        "credit_raw_2025113.csv",
        "credit_final_20251130.csv",
        "credit_raw_20251130.parquet",
        "credit_data_raw_20251130.csv",
    ],
)
def test_data_name_regex_rejects_off_convention_names(name):
    assert DATA_NAME_RE.match(name) is None


@pytest.mark.parametrize("name", ["rf_credit_v0.pkl", "rf_credit_1.pkl", "RF_credit_v1.pkl"])
def test_model_name_regex_rejects_off_convention_names(name):
    assert MODEL_NAME_RE.match(name) is None


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


def test_write_csv_has_no_index_and_round_trips(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None]}, index=[10, 11])

    write_csv(tmp_path / "f.csv", frame)

    assert (tmp_path / "f.csv").read_text(encoding="utf-8").splitlines()[0] == "a,b"
    back = read_csv(tmp_path / "f.csv")
    assert back["a"].tolist() == [1, 2]
    assert back["b"].iloc[0] == "x" and pd.isna(back["b"].iloc[1])


def test_pickle_round_trip(tmp_path):
    write_pickle(tmp_path / "m.pkl", {"weights": [1.5, 2.5]})

    assert read_pickle(tmp_path / "m.pkl") == {"weights": [1.5, 2.5]}


@pytest.mark.parametrize("reader", [read_csv, read_pickle])
def test_reading_a_missing_upstream_output_names_it(tmp_path, reader):
    path = tmp_path / "data" / "raw" / "x_raw_20251130.csv"

    with pytest.raises(PipelineError) as info:
        reader(path)

    assert str(path) in str(info.value) and "run the stage" in str(info.value)


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


# --- run_stage --------------------------------------------------------------------------


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_run_stage_params_error_prints_one_line_and_returns_2(tmp_path, capsys):
    raw = project_params()
    raw["split"]["test_size"] = 1.5
    params = write_params(tmp_path / "params.yaml", raw)
    called = []

    code = run_stage(stage_parser("test"), lambda *a: called.append(a), ["--params", str(params)])

    err = capsys.readouterr().err
    assert code == 2
    assert called == []
    assert error_lines(err) == ["error: split.test_size = 1.5: out of range, allowed (0.0, 1.0)"]
    assert "Traceback" not in err


def test_run_stage_missing_params_file_returns_2(tmp_path, capsys):
    code = run_stage(stage_parser("test"), lambda *a: None, ["--params", str(tmp_path / "no")])

    assert code == 2
    assert error_lines(capsys.readouterr().err) == [
        f"error: cannot read {tmp_path / 'no'}: No such file or directory"
    ]


def test_run_stage_collapses_multi_line_data_error(tmp_path, capsys):
    params = write_params(tmp_path / "params.yaml", project_params())

    def body(args, params, layout):
        raise DataError("first line\n   second   line")

    code = run_stage(stage_parser("test"), body, ["--params", str(params)])

    assert code == 2
    assert error_lines(capsys.readouterr().err) == ["error: first line second line"]


def test_run_stage_success_passes_params_and_layout(tmp_path, capsys):
    params_path = write_params(tmp_path / "params.yaml", project_params())
    seen = {}

    def body(args, params, layout):
        seen.update(dataset=args.dataset, layout=layout, datasets=list(params.datasets))

    argv = ["--params", str(params_path), "--root", str(tmp_path), "--dataset", "tiny"]
    code = run_stage(stage_parser("test", dataset=True), body, argv)

    assert code == 0
    assert seen == {"dataset": "tiny", "layout": Layout(tmp_path), "datasets": ["tiny"]}
    assert error_lines(capsys.readouterr().err) == []


def test_run_stage_lets_bugs_raise(tmp_path):
    """Only user errors become exit code 2; a bug keeps its traceback."""
    params = write_params(tmp_path / "params.yaml", project_params())

    def body(args, params, layout):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_stage(stage_parser("test"), body, ["--params", str(params)])


def test_stage_parser_defaults_and_required_flags():
    parser = stage_parser("x", dataset=True, algo=True)

    args = parser.parse_args(["--dataset", "credit", "--algo", "rf"])

    assert (args.params, args.root, args.verbose) == ("params.yaml", ".", False)
    with pytest.raises(SystemExit):
        parser.parse_args(["--dataset", "credit"])


def test_repo_params_pass_run_stage():
    code = run_stage(stage_parser("x"), lambda *a: None, ["--params", str(PARAMS_FILE)])

    assert code == 0
