"""The batch CLI: python -m tabml.serving.predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabml.serving import predict
from tests.helpers import batch_cli
from tests.serving.conftest import DATASET, SNAPSHOT, model_file


def argv(project: Path, *extra: str) -> list[str]:
    return ["--root", str(project), *extra]


@pytest.fixture
def test_csv(project: Path) -> Path:
    return project / "data" / "interim" / DATASET / f"{DATASET}-test_interim_{SNAPSHOT}.csv"


def test_predicts_a_file_with_a_model_id(project, test_csv, tmp_path):
    out = tmp_path / "out" / "predictions.csv"
    args = ["--model", f"rf_{DATASET}_v1", "--input", str(test_csv), "--output", str(out)]
    code = predict.main(argv(project, *args, "--keep", "Status", "Age"))
    assert code == 0
    result = pd.read_csv(out, float_precision="round_trip")
    assert list(result.columns) == ["Status", "Age", "prediction", "proba_good", "proba_bad"]
    model = model_file(project, f"rf_{DATASET}_v1")
    rows = pd.read_csv(test_csv)
    expected = model.predict_proba(rows)
    np.testing.assert_array_equal(result[["proba_good", "proba_bad"]], expected)
    assert result["prediction"].tolist() == model.predict(rows, 0.5)
    assert result["Status"].tolist() == rows["Status"].tolist()


def test_dataset_uses_the_champion(project, test_csv, tmp_path):
    out = tmp_path / "p.csv"
    assert (
        predict.main(
            argv(project, "--dataset", DATASET, "--input", str(test_csv), "--output", str(out))
        )
        == 0
    )
    board = json.loads((project / "metrics" / "leaderboard" / f"{DATASET}.json").read_text())
    model = model_file(project, board["champion_model"])
    expected = model.predict_proba(pd.read_csv(test_csv))[:, 1]
    got = pd.read_csv(out, float_precision="round_trip")["proba_bad"]
    np.testing.assert_array_equal(got, expected)


def bad_input(tmp_path: Path, test_csv: Path) -> Path:
    rows = pd.read_csv(test_csv).head(5).astype(object)
    rows.loc[3, "Home"] = "castle"
    path = tmp_path / "bad.csv"
    rows.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("make_args", "words"),
    [
        (
            lambda p, t, bad: ["--model", f"lr_{DATASET}_v1", "--input", str(bad)],
            ["'Home'", "row 3", "CSV line 5", "unseen category 'castle'"],
        ),
        (lambda p, t, bad: ["--model", "../../etc/passwd", "--input", str(t)], ["not a model id"]),
        (
            lambda p, t, bad: ["--model", f"svm_{DATASET}_v1", "--input", str(t)],
            [f"models/{DATASET}/svm_{DATASET}_v1.pkl is missing", "make repro"],
        ),
        (lambda p, t, bad: ["--dataset", "churn", "--input", str(t)], ["unknown dataset 'churn'"]),
        (
            lambda p, t, bad: ["--dataset", DATASET, "--input", str(p / "absent.csv")],
            ["cannot read"],
        ),
        (lambda p, t, bad: ["--dataset", DATASET, "--input", str(t), "--keep", "nope"], ["'nope'"]),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_output(
    project, test_csv, tmp_path, capsys, make_args, words
):
    out = tmp_path / "out.csv"
    args = make_args(project, test_csv, bad_input(tmp_path, test_csv))
    assert predict.main(argv(project, *args, "--output", str(out))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    for word in words:
        assert word in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file


def test_real_process_error_is_one_line_without_traceback(project, test_csv, tmp_path):
    out = tmp_path / "out.csv"
    bad = bad_input(tmp_path, test_csv)
    proc = batch_cli(
        *argv(project, "--model", f"xgb_{DATASET}_v1", "--input", str(bad), "--output", str(out))
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: column 'Home', row 3") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not out.exists()


def test_a_model_dvc_lock_does_not_vouch_for_is_refused(project_copy, test_csv, tmp_path, capsys):
    model = project_copy / "models" / DATASET / f"lr_{DATASET}_v1.pkl"
    model.write_bytes(model.read_bytes() + b"x")
    out = tmp_path / "out.csv"
    args = ["--model", f"lr_{DATASET}_v1", "--input", str(test_csv), "--output", str(out)]
    assert predict.main(argv(project_copy, *args)) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: models/{DATASET}/lr_{DATASET}_v1.pkl has md5 ")
        and err.count("\n") == 1
    )
    assert "refusing to load it" in err and not out.exists()


@pytest.mark.parametrize(
    ("value", "reason"), [("1e40", "is out of range"), ("\uff16\uff14", "is not a number")]
)
def test_values_the_api_refuses_are_refused_here_too(
    project, test_csv, tmp_path, capsys, value, reason
):
    rows = pd.read_csv(test_csv).head(5).astype(object)
    rows.loc[3, "Income"] = value
    source = tmp_path / "in.csv"
    rows.to_csv(source, index=False)
    args = [
        "--model",
        f"rf_{DATASET}_v1",
        "--input",
        str(source),
        "--output",
        str(tmp_path / "o.csv"),
    ]
    assert predict.main(argv(project, *args)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: column 'Income', row 3 (CSV line 5): ") and reason in err
