"""The Dask engine's pure parts, without a cluster: how a file is cut into blocks, how a
block's line numbers become the file's, how the whole-file schema and types are gathered
from partitions, the random forest it stands in with, and that pandas datasets never
import any of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stages.ingest import check_raw
from tabml.daskengine import featurize, ingest, split, train
from tabml.errors import DataError
from tabml.features import row_id_columns
from tabml.params import DatasetParams, RFParams
from tabml.schema import infer_schema
from tests.dask import synth
from tests.helpers import REPO


def test_blocks_end_at_line_ends_outside_quotes(tmp_path: Path) -> None:
    text = 'a,b\n1,"x\ny"\n' + "".join(f'{i},"q""{i}\n"\n' for i in range(200)) + "9,z"
    path = tmp_path / "f.csv"
    path.write_bytes(text.encode())
    parts = list(ingest.blocks(path, 16))
    assert b"".join(parts) == text.encode()
    assert len(parts) > 10
    for part in parts[:-1]:
        assert part.endswith(b"\n") and part.count(b'"') % 2 == 0  # never inside a quote


def test_a_blocks_line_numbers_become_the_files() -> None:
    message = "source x.csv: line 5 has 3 fields, the header has 4 (header line 1)"
    assert ingest.file_lines(message, 100) == (
        "source x.csv: line 104 has 3 fields, the header has 4 (header line 1)"
    )


@pytest.mark.parametrize(
    ("labels", "rows", "reason"),
    [
        ([], 0, "is empty (no rows)"),
        ([], 10, "has fewer than two classes (all values missing)"),
        (["no"], 10, "has fewer than two classes (only 'no')"),
        (["a", "b", "c"], 10, "has 3 classes"),
        (["no", "maybe"], 10, "positive_class 'yes' is not a value"),
    ],
)
def test_the_stages_check_judges_the_summary_as_the_whole_source(
    labels: list[str], rows: int, reason: str
) -> None:
    spec = DatasetParams(source="s.csv", target="bought", positive_class="yes", snapshot="20250101")
    summary = ingest.summary_frame(["x", "bought"], labels, rows, "bought")
    with pytest.raises(DataError, match=r".*") as caught:
        check_raw(summary, spec, "tiny")
    assert reason in str(caught.value)
    whole = pd.DataFrame({"x": range(rows), "bought": (labels * rows)[:rows] or [None] * rows})
    with pytest.raises(DataError) as same:
        check_raw(whole, spec, "tiny")
    assert str(same.value) == str(caught.value)


def test_column_types_come_from_the_whole_column() -> None:
    """A column of numbers in one partition and text in another is text; integers with a
    missing value are floats; True/False in any case pandas reads are booleans."""
    parts = [
        pd.DataFrame(
            {
                "n": ["1", "2"],
                "f": ["1", " "],
                "t": ["3", "4"],
                "b": ["True", "false"],
                "y": ["a", "b"],
            }
        ),
        pd.DataFrame(
            {
                "n": ["3", "4"],
                "f": ["2.5", "7"],
                "t": ["x", "5"],
                "b": ["TRUE", None],
                "y": ["a", "a"],
            }
        ),
    ]
    types = split.column_types([split.column_stats(p, "y") for p in parts])
    assert types == {"n": "int64", "f": "float64", "t": "object", "b": "bool", "y": "object"}
    typed = split.typed(parts[1], types)
    assert typed["f"].tolist() == [2.5, 7.0] and typed["t"].tolist() == ["x", "5"]
    assert typed["b"].tolist() == [True, None]
    assert split.typed(parts[0], types)["f"].isna().tolist() == [False, True]  # blank: missing


def test_the_split_side_of_a_row_depends_on_its_values_only() -> None:
    rows = synth.frame(4000, 0).astype(str)
    side = split.test_side(rows, 0.25, 42)
    assert 0.22 < side.mean() < 0.28
    shuffled = rows.iloc[::-1]
    assert (split.test_side(shuffled, 0.25, 42) == side[::-1]).all()  # order, partitioning
    assert (split.test_side(rows, 0.25, 7) != side).any()  # the seed matters


def test_the_schema_from_partition_statistics_is_infer_schemas_on_the_whole_split() -> None:
    whole = synth.frame(3000, 3)
    whole["member"] = whole["member"].astype(object)
    whole.loc[::7, "member"] = None
    columns = [c for c in whole.columns if c != synth.TARGET]
    parts = [whole.iloc[i::4] for i in range(4)]
    stats = featurize.merge_stats([featurize.value_stats(p, columns, synth.TARGET) for p in parts])
    schema = featurize.whole_schema(whole.iloc[:0], columns, stats)
    assert schema == infer_schema(whole[columns])
    assert stats["rows"] == len(whole)


def test_row_ids_are_judged_on_the_whole_split() -> None:
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(100)], "c": ["a", "b"] * 50})
    stats = featurize.merge_stats(
        [featurize.value_stats(p, ["id", "c"], "c") for p in (frame.iloc[:50], frame.iloc[50:])]
    )
    schema = featurize.whole_schema(frame.iloc[:0], ["id", "c"], stats)
    present = featurize.present_counts(stats)
    assert present == {"id": 100, "c": 100}
    assert row_id_columns(schema, present, 0.9) == [("id", 100, 100)]
    assert row_id_columns(schema, present, 0.9, ["id"]) == []


def test_the_random_forest_settings() -> None:
    params = RFParams(n_estimators=300, max_depth=None, min_samples_leaf=4, class_weight="balanced")
    settings = train.rf_settings(params, n_features=100, prior=0.2, n_pos=200, n_neg=800)
    assert settings["n_estimators"] == 300 and settings["subsample"] == 0.632
    assert settings["max_depth"] == 0 and settings["grow_policy"] == "lossguide"
    assert settings["colsample_bynode"] == pytest.approx(0.1)
    assert settings["min_child_weight"] == pytest.approx(4 * 0.2 * 0.8)
    assert settings["scale_pos_weight"] == 4.0


def test_a_pandas_dataset_never_imports_dask(tmp_path: Path) -> None:
    """The engine's modules load inside the `engine == "dask"` branches only."""
    source = synth.write(tmp_path / "data" / "external" / "tiny" / "tiny.csv", 200)
    params = {
        "datasets": {
            "tiny": {
                "source": str(source.relative_to(tmp_path)),
                "target": synth.TARGET,
                "positive_class": synth.POSITIVE,
                "snapshot": "20250101",
            }
        },
        "train": {"algos": ["lr"], "model_version": 1},
    }
    (tmp_path / "params.yaml").write_text(json.dumps(params))
    code = f"""
import json, sys
from stages import ingest, split
root, params = {str(tmp_path)!r}, {str(tmp_path / "params.yaml")!r}
args = ["--root", root, "--params", params, "--dataset", "tiny"]
assert ingest.main(args) == 0 and split.main(args) == 0
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed")
                        or m.startswith("tabml.daskengine"))))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == []


def test_the_text_rule_on_distinct_values_is_as_texts() -> None:
    from tabml.daskengine.frames import blank_masked, text_counts, text_series
    from tabml.schema import as_text

    column = pd.Series(["a", " ", "", None, 1.0, 2, 2.5, True, "a", "1", float("nan")] * 3)
    expected = as_text(column)
    pd.testing.assert_series_equal(text_series(column), expected)
    assert text_counts(column) == expected.value_counts().to_dict()
    assert blank_masked(column).isna().sum() == 12  # None, NaN and the two blank cells


@pytest.mark.parametrize(
    "values",
    [
        ["a", " ", "", None, "1", "1.0", "a", float("nan")],  # text, as read from a CSV
        [True, False, None, True],  # booleans with a missing value
        [1.0, 2.5, float("nan"), 3.0],  # numbers
    ],
)
def test_the_text_rule_per_distinct_value_on_one_kind_columns(values: list) -> None:
    from tabml.daskengine.frames import text_counts, text_series
    from tabml.schema import as_text

    column = pd.Series(values * 50, dtype=object)
    pd.testing.assert_series_equal(text_series(column), as_text(column))
    assert text_counts(column) == as_text(column).value_counts().to_dict()


def test_processed_partitions_hold_at_most_part_rows_in_row_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tabml.features import build_transformer
    from tabml.params import FeaturizeParams
    from tabml.schema import conform
    from tabml.target import encode_target

    monkeypatch.setattr(featurize, "PART_ROWS", 40)
    part = synth.frame(130, 4)
    inputs = part.drop(columns=[synth.TARGET])
    schema = infer_schema(inputs)
    transformer = build_transformer(schema, FeaturizeParams(), dense=True).fit(
        conform(inputs, schema)
    )
    names = [str(n) for n in transformer.get_feature_names_out()]
    outs = [str(tmp_path / f"p{k}.parquet") for k in range(featurize.chunks(len(part)))]
    assert len(outs) == 4
    rows = featurize.transform_part(
        part, schema, transformer, names, synth.TARGET, synth.POSITIVE, True, "x", outs
    )
    assert rows == 130
    written = [pd.read_parquet(out) for out in outs]
    assert [len(w) for w in written] == [40, 40, 40, 10]
    whole = pd.concat(written, ignore_index=True)
    expected = transformer.transform(conform(inputs, schema)).astype("float32")
    np.testing.assert_array_equal(whole[names].to_numpy(), expected)
    assert (whole[synth.TARGET] == encode_target(part[synth.TARGET], synth.POSITIVE)).all()


def test_split_reads_blocks_that_keep_quoted_line_breaks_in_their_rows(tmp_path: Path) -> None:
    from tabml.csvfile import CsvOptions

    rows = pd.DataFrame(
        {"note": [f"line one\nline two {i}" if i % 3 else f"plain {i}" for i in range(300)]}
    )
    rows["n"] = range(300)
    path = tmp_path / "raw.csv"
    rows.to_csv(path, index=False)
    kwargs = CsvOptions().read_kwargs()
    spans = split.block_spans(path, 200)
    assert len(spans) > 10
    header = split.header_line(path)
    parts = [split.read_text(path, start, length, header, kwargs) for start, length in spans]
    whole = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(whole, pd.read_csv(path, dtype=object))


# --- cross-validation of the Dask engine's models, without a cluster -------------------------


def _tiny_params(**train_section: object) -> dict:
    return {
        "datasets": {
            "tiny": {
                "source": "data/external/tiny/tiny.csv",
                "target": synth.TARGET,
                "positive_class": synth.POSITIVE,
                "snapshot": "20250101",
                "engine": "dask",
            }
        },
        "train": {"algos": ["rf", "xgb", "lr"], "model_version": 1, **train_section},
    }


def _sample(part_rows: list[int], seed: int = 0) -> train.Sample:
    """Rows of 4 float32 features with a clear signal, as pulled from partitions holding
    ``part_rows`` of them; every other train row (row numbers 0, 2, 4, ...)."""
    rng = np.random.default_rng(seed)
    n = sum(part_rows)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.logistic(size=n) * 0.5 > 0).astype(np.int64)
    return train.Sample(
        rows=np.arange(n) * 2,
        part=np.repeat(np.arange(len(part_rows)), part_rows),
        frame=pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(y=y),
        X=X,
        y=y,
        total=2 * n,
    )


def _rules(build=None) -> train.StageRules:
    from stages.train import build_estimator

    return train.StageRules(build or build_estimator, lambda *args: None)


@pytest.mark.parametrize("where", ["params.yaml", "tuned file"])
def test_a_dask_model_cannot_be_calibrated(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The engine ships uncalibrated estimators only: a calibration it would not apply is
    one error line, before any data is read, not a card that claims it. In params.yaml
    check-params refuses it too; a tuned file's value only train sees."""
    from stages import train as stage

    lr = {"calibration": "sigmoid"} if where == "params.yaml" else {}
    (tmp_path / "params.yaml").write_text(json.dumps(_tiny_params(lr=lr)))
    if where == "tuned file":
        (tmp_path / "tuned").mkdir()
        (tmp_path / "tuned" / "tiny-lr.yaml").write_text("calibration: sigmoid\n")
    args = ["--root", str(tmp_path), "--params", str(tmp_path / "params.yaml")]
    assert stage.main([*args, "--dataset", "tiny", "--algo", "lr"]) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: train.lr.calibration: sigmoid is not available for dataset 'tiny' (engine: "
        "dask, which has no calibrated estimator to ship): set it to none"
    ]
    assert "Traceback" not in err


@pytest.mark.parametrize("algo", ["rf", "xgb", "lr"])
def test_the_sample_is_cross_validated_with_the_pandas_engines_folds(algo: str) -> None:
    from sklearn.metrics import roc_auc_score

    from tabml.cv import fold_ids
    from tabml.params import parse_params

    params = parse_params(
        _tiny_params(
            cv_folds=3,
            rf={"n_estimators": 20, "n_jobs": 1},
            xgb={"n_estimators": 30, "n_jobs": 1},
        )
    )
    sample = _sample([300, 250, 50])
    result = train.cross_validate_sample(algo, params, sample, _rules(), "tiny")
    assert result.rows.tolist() == sample.rows.tolist()  # numbered as in the train split
    assert result.y.tolist() == sample.y.tolist()
    assert result.fold.tolist() == fold_ids(sample.y, 3, 42).tolist()
    assert (result.folds, result.seed) == (3, 42)
    assert roc_auc_score(result.y, result.proba) > 0.85


def test_the_xgb_twin_early_stops_on_the_row_hash_share_as_the_workers_do() -> None:
    """DaskXGBClassifier validates on the rows whose seeded hash falls below
    validation_fraction; each fold's twin validates on those of its training rows."""
    from xgboost import XGBClassifier

    from tabml.cv import fold_ids
    from tabml.params import parse_params

    fits: list[tuple[int, int]] = []

    class Recording(XGBClassifier):
        def fit(self, X, y, *, eval_set, verbose):
            fits.append((len(X), len(eval_set[-1][0])))
            return super().fit(X, y, eval_set=eval_set, verbose=verbose)

    def build(algo: str, params: object) -> XGBClassifier:
        return Recording(n_estimators=10, early_stopping_rounds=3, n_jobs=1, eval_metric="logloss")

    params = parse_params(_tiny_params(cv_folds=3, xgb={"seed": 7}))  # split.seed is 42
    sample = _sample([400, 200])
    train.cross_validate_sample("xgb", params, sample, _rules(build), "tiny")
    folds = fold_ids(sample.y, 3, 42)
    hashed = train.with_uniform(sample.frame, 7)[train.UNIFORM]  # fit_xgb's: xgb.seed
    valid = hashed.to_numpy() < params.train.xgb.validation_fraction
    expected = [
        (int((~valid & (folds != i)).sum()), int((valid & (folds != i)).sum())) for i in range(3)
    ]
    assert fits == expected
    assert 0.1 < valid.mean() < 0.3  # validation_fraction 0.2


def test_the_lr_twin_steps_partition_by_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    from tabml.cv import fold_ids
    from tabml.params import parse_params

    sizes: list[int] = []
    step = train.sgd_update

    def recording(state, X, y):
        sizes.append(len(y))
        return step(state, X, y)

    monkeypatch.setattr(train, "sgd_update", recording)
    params = parse_params(_tiny_params(cv_folds=2))
    sample = _sample([120, 80, 100])
    train.cross_validate_sample("lr", params, sample, _rules(), "tiny")
    held_out_first = fold_ids(sample.y, 2, 42) == 0
    first_epoch = np.bincount(sample.part[~held_out_first]).tolist()
    assert sizes[:3] == first_epoch and sum(first_epoch) == (~held_out_first).sum()
    assert len(sizes) >= 3 * (train.PATIENCE + 1) * 2  # epochs until no improvement, 2 folds


def test_the_row_hash_that_picks_xgbs_validation_rows_is_seeded() -> None:
    """Processed partitions are all numbers, whose pandas hash ignores its key: the seed
    must still change which rows validate, and nothing else may (order, partitioning)."""
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(2000, 3)), columns=list("abc"))
    frame["y"] = (frame["a"] > 0).astype(np.int64)

    def valid(part: pd.DataFrame, seed: int) -> np.ndarray:
        return train.with_uniform(part, seed)[train.UNIFORM].to_numpy() < 0.2

    picked = valid(frame, 42)
    assert 0.17 < picked.mean() < 0.23
    assert (valid(frame.iloc[::-1], 42) == picked[::-1]).all()
    assert (np.concatenate([valid(frame[:700], 42), valid(frame[700:], 42)]) == picked).all()
    other = valid(frame, 7)
    assert 0.17 < other.mean() < 0.23 and (other & picked).sum() < 0.3 * picked.sum()
