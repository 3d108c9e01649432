"""Model files (tabml.artifact): a plain scikit-learn Pipeline plus a JSON card, checked on
load (card belongs to the model, same probabilities as at training time, library versions),
and vouched for by dvc.lock before a server unpickles anything."""

from __future__ import annotations

import json
import logging
import sys
from importlib import metadata
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier, XGBRFClassifier

from tabml.artifact import (
    CHECK_TOLERANCE,
    ModelCard,
    library_versions,
    load_vouched,
    lock_md5s,
    read_card,
    read_model,
    save_model,
    version_differences,
)
from tabml.errors import ModelFileError, PipelineError
from tabml.features import load_features
from tabml.files import md5_file, read_json, write_pickle
from tabml.layout import Layout
from tabml.model import single_threaded
from tests.helpers import standalone_predictions
from tests.unit.conftest import SNAPSHOT


def edit_card(layout: Layout, algo: str, edit, version: int = 1) -> None:
    """Change the JSON card of a model on disk: ``edit`` mutates the parsed mapping."""
    path = layout.card(algo, "tiny", version)
    card = json.loads(path.read_text(encoding="utf-8"))
    edit(card)
    path.write_text(json.dumps(card), encoding="utf-8")


def shift_first_proba(delta: float):
    """A card edit: the first check row's recorded probability moved by ``delta``."""

    def edit(card: dict) -> None:
        card["check"]["proba"][0] += delta

    return edit


def model_error(layout: Layout, algo: str = "lr", version: int = 1) -> str:
    with pytest.raises(ModelFileError) as info:
        read_model(layout, algo, "tiny", version)
    return str(info.value)


# --- what train writes ------------------------------------------------------------------


def test_card_describes_the_model(trained_project):
    layout = Layout(trained_project)
    features, _ = load_features(layout, "tiny", SNAPSHOT)

    card = read_card(layout.card("lr", "tiny", 1))

    assert (card.card_format, card.model_id, card.algo, card.dataset, card.version) == (
        1,
        "lr_tiny_v1",
        "lr",
        "tiny",
        1,
    )
    assert card.model_file == "lr_tiny_v1.pkl"
    assert "joblib.load('lr_tiny_v1.pkl')" in card.loading and "P('yes')" in card.loading
    assert (card.target, card.classes, card.positive_class) == ("y", ("no", "yes"), "yes")
    assert card.columns == features.columns
    assert card.feature_names == features.feature_names
    assert card.data == features.data
    assert card.data.snapshot == SNAPSHOT and card.data.train_rows == 30
    assert set(card.params) == {"dataset", "featurize", "split", "lr"}
    assert card.params["dataset"]["positive_class"] == "yes"
    assert card.params["lr"] == {
        "calibration": "none",
        "C": 1.0,
        "max_iter": 1000,
        "class_weight": None,
    }
    assert card.train_metrics == read_json(layout.train_metrics_dir("tiny", "lr") / "metrics.json")
    assert card.history == {}
    assert card.libraries == library_versions(LogisticRegression())
    assert card.check.rows == features.check_rows
    assert len(card.check.proba) == len(card.check.rows) == 8
    assert all(0.0 <= p <= 1.0 for p in card.check.proba)


def test_card_check_probabilities_are_the_models(tiny_model):
    card = tiny_model.card

    got = tiny_model.predict_proba(card.check.rows)[:, 1]

    np.testing.assert_allclose(got, card.check.proba, rtol=0, atol=CHECK_TOLERANCE)


def test_card_file_is_stable_sorted_json(trained_project):
    path = Layout(trained_project).card("lr", "tiny", 1)
    text = path.read_text(encoding="utf-8")
    raw = json.loads(text)

    assert text == json.dumps(raw, indent=2, sort_keys=True) + "\n"
    assert ModelCard.model_validate(raw).model_dump(mode="json") == raw


def test_model_file_is_a_plain_sklearn_pipeline(trained_project, frame):
    layout = Layout(trained_project)
    model = read_model(layout, "lr", "tiny", 1)

    pipeline = joblib.load(layout.model("lr", "tiny", 1))

    assert isinstance(pipeline, Pipeline)
    assert [name for name, _ in pipeline.steps] == ["preprocess", "model"]
    assert isinstance(pipeline.named_steps["preprocess"], ColumnTransformer)
    # The card's loading note: a DataFrame of the raw columns, missing as NaN.
    rows = frame[[c.name for c in model.schema]]
    np.testing.assert_allclose(pipeline.predict_proba(rows), model.predict_proba(frame))


def test_model_file_loads_without_this_repository(trained_project, tmp_path):
    """Only library objects are pickled: ``python -I -S`` in an empty directory, where no
    module of this repository is importable, loads it and predicts what read_model does."""
    layout = Layout(trained_project)
    rows = layout.interim("tiny", "test", SNAPSHOT)

    got = standalone_predictions(
        layout.model("rf", "tiny", 1), layout.card("rf", "tiny", 1), rows, tmp_path
    )

    assert got["type"] == "sklearn.pipeline.Pipeline" and got["ours_loaded"] == []
    model = read_model(layout, "rf", "tiny", 1)
    single_threaded(model.pipeline)
    expected = model.predict_proba(pd.read_csv(rows), strict_categories=False)
    np.testing.assert_array_equal(got["proba"], expected)


def test_library_versions_record_what_computes_the_model():
    lr, xgb = library_versions(LogisticRegression()), library_versions(XGBClassifier())

    assert set(lr) == {"python", "scikit-learn", "numpy", "scipy", "pandas", "joblib"}
    assert set(xgb) == set(lr) | {"xgboost"}
    assert library_versions(XGBRFClassifier()) == xgb  # the Dask engine's random forest
    assert lr["python"] == ".".join(map(str, sys.version_info[:2]))
    assert lr["scikit-learn"] == metadata.version("scikit-learn")


# --- save_model / read_model ------------------------------------------------------------


def test_save_and_read_round_trip(tiny_model, tmp_path, frame):
    layout = Layout(tmp_path)

    pkl, card_path = save_model(layout, tiny_model.pipeline, tiny_model.card)

    assert (pkl, card_path) == (layout.model("lr", "tiny", 1), layout.card("lr", "tiny", 1))
    assert [p.name for p in layout.models_dir.iterdir()] == ["tiny"]
    assert sorted(p.name for p in layout.dataset_models_dir("tiny").iterdir()) == [
        "lr_tiny_v1.json",
        "lr_tiny_v1.pkl",
    ]
    back = read_model(layout, "lr", "tiny", 1)
    assert back.card == tiny_model.card
    assert isinstance(back.pipeline, Pipeline)
    np.testing.assert_array_equal(back.predict_proba(frame), tiny_model.predict_proba(frame))


def test_save_model_names_files_by_the_cards_version(tiny_model, tmp_path):
    card = tiny_model.card.model_copy(
        update={"version": 7, "model_id": "lr_tiny_v7", "model_file": "lr_tiny_v7.pkl"}
    )

    save_model(Layout(tmp_path), tiny_model.pipeline, card)

    assert read_model(Layout(tmp_path), "lr", "tiny", 7).model_id == "lr_tiny_v7"


def test_read_model_restores_n_jobs_after_the_check(trained_project):
    model = read_model(Layout(trained_project), "rf", "tiny", 1)

    assert model.estimator.get_params()["n_jobs"] == 2  # project params: rf n_jobs 2


def test_read_model_refuses_a_card_of_another_model(trained):
    layout = Layout(trained)
    for src, dst in (
        (layout.model("lr", "tiny", 1), layout.model("lr", "tiny", 2)),
        (layout.card("lr", "tiny", 1), layout.card("lr", "tiny", 2)),
    ):
        dst.write_bytes(src.read_bytes())

    message = model_error(layout, "lr", 2)

    assert message == f"{layout.card('lr', 'tiny', 2)} describes 'lr_tiny_v1'"


def test_read_model_refuses_a_card_of_another_algorithm(trained):
    layout = Layout(trained)
    layout.card("lr", "tiny", 1).write_bytes(layout.card("rf", "tiny", 1).read_bytes())

    assert "describes 'rf_tiny_v1'" in model_error(layout, "lr")


@pytest.mark.parametrize(
    "payload",
    [
        {"not": "a pipeline"},
        [1, 2, 3],
        "estimator",  # replaced below by the bare estimator, without its preprocessing
    ],
)
def test_read_model_refuses_a_file_that_is_not_a_pipeline(trained, payload):
    layout = Layout(trained)
    if payload == "estimator":
        payload = joblib.load(layout.model("lr", "tiny", 1)).steps[-1][1]
    write_pickle(layout.model("lr", "tiny", 1), payload)

    message = model_error(layout)

    assert message == f"{layout.model('lr', 'tiny', 1)} does not hold a scikit-learn Pipeline"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_read_model_refuses_a_damaged_model_file(trained, damage):
    """A damaged pickle is a ModelFileError (one line, exit 2), not a bare unpickling error."""
    path = Layout(trained).model("lr", "tiny", 1)
    data = path.read_bytes()
    path.write_bytes(
        {
            "garbage": b"not a pickle at all\n" * 10,
            "truncated": data[: len(data) // 2],
            "empty": b"",
        }[damage]
    )

    assert str(path) in model_error(Layout(trained))


def test_read_model_refuses_changed_check_probabilities(trained):
    layout = Layout(trained)
    edit_card(layout, "lr", shift_first_proba(0.01))

    message = model_error(layout)

    assert message.startswith(
        "lr_tiny_v1 no longer gives the probabilities recorded in its card (off by 0.01 on its "
        "check rows): retrain it"
    )
    assert "\n" not in message


def test_read_model_refuses_changed_check_rows(trained):
    layout = Layout(trained)
    edit_card(layout, "lr", lambda c: c["check"]["rows"][0].update(income=1000.0))

    assert "no longer gives the probabilities recorded in its card" in model_error(layout)


def test_read_model_refuses_a_model_swapped_under_its_card(trained):
    layout = Layout(trained)
    other = joblib.load(layout.model("rf", "tiny", 1))
    write_pickle(layout.model("lr", "tiny", 1), other)

    assert "no longer gives the probabilities" in model_error(layout)


def test_read_model_tolerates_rounding_noise_only(trained):
    layout = Layout(trained)
    edit_card(layout, "lr", shift_first_proba(1e-12))

    read_model(layout, "lr", "tiny", 1)


def test_library_version_difference_is_a_warning_naming_both(trained, caplog):
    layout = Layout(trained)
    edit_card(layout, "lr", lambda c: c["libraries"].update({"scikit-learn": "0.0.1"}))

    with caplog.at_level(logging.WARNING, logger="tabml.artifact"):
        model = read_model(layout, "lr", "tiny", 1)

    here = metadata.version("scikit-learn")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert model.model_id == "lr_tiny_v1"
    assert len(warnings) == 1
    assert warnings[0].getMessage() == (
        f"lr_tiny_v1 was trained with scikit-learn 0.0.1 (here {here})"
    )


def test_no_warning_when_libraries_match(trained_project, caplog):
    with caplog.at_level(logging.WARNING, logger="tabml.artifact"):
        read_model(Layout(trained_project), "lr", "tiny", 1)

    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_check_failure_names_the_library_differences(trained):
    layout = Layout(trained)

    def edit(card):
        card["libraries"]["numpy"] = "1.0.0"
        card["check"]["proba"][1] = 0.5 if card["check"]["proba"][1] != 0.5 else 0.6

    edit_card(layout, "lr", edit)

    message = model_error(layout)

    assert f"(trained with numpy 1.0.0 (here {metadata.version('numpy')}))" in message
    assert "install the library versions its card lists" in message


def test_version_differences_lists_missing_libraries(tiny_model):
    card = tiny_model.card.model_copy(
        update={"libraries": {**tiny_model.card.libraries, "nosuchlib": "1.2"}}
    )

    assert version_differences(card) == ["nosuchlib 1.2 (here not installed)"]
    assert version_differences(tiny_model.card) == []


def test_missing_files_are_pipeline_errors(trained):
    layout = Layout(trained)
    layout.model("lr", "tiny", 1).unlink()

    with pytest.raises(PipelineError, match="does not exist: run the stage"):
        read_model(layout, "lr", "tiny", 1)
    with pytest.raises(PipelineError, match=r"lr_tiny_v3\.json does not exist"):
        read_model(layout, "lr", "tiny", 3)


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "",
        "[]",
        '{"model_id": "lr_tiny_v1"}',
    ],
)
def test_read_model_refuses_a_file_that_is_not_a_card(trained, text):
    layout = Layout(trained)
    layout.card("lr", "tiny", 1).write_text(text, encoding="utf-8")

    message = model_error(layout)

    assert message.startswith(f"{layout.card('lr', 'tiny', 1)} is not a model card (")
    assert "\n" not in message


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.update(card_format=2),
        lambda c: c.update(surprise=1),
        lambda c: c.pop("check"),
        lambda c: c.update(classes=["no"]),
        lambda c: c["columns"][0].update(kind="text"),
    ],
)
def test_read_model_refuses_a_card_of_another_format(trained, edit):
    layout = Layout(trained)
    edit_card(layout, "lr", edit)

    assert "is not a model card" in model_error(layout)


# --- dvc.lock vouches for the files -----------------------------------------------------


def write_lock(root: Path, entries: dict[str, str]) -> None:
    outs = "".join(
        f"    - path: {path}\n      hash: md5\n      md5: {md5}\n      size: 1\n"
        for path, md5 in entries.items()
    )
    (root / "dvc.lock").write_text(
        f"schema: '2.0'\nstages:\n  train@tiny-lr:\n    cmd: python -m stages.train\n"
        f"    outs:\n{outs}",
        encoding="utf-8",
    )


def lock_of(root: Path, algo: str = "lr") -> dict[str, str]:
    layout = Layout(root)
    return {
        f"models/tiny/{algo}_tiny_v1.pkl": md5_file(layout.model(algo, "tiny", 1)),
        f"models/tiny/{algo}_tiny_v1.json": md5_file(layout.card(algo, "tiny", 1)),
    }


def vouched_error(root: Path, algo: str = "lr", version: int = 1) -> str:
    with pytest.raises(ModelFileError) as info:
        load_vouched(root, algo, "tiny", version)
    return str(info.value)


def test_load_vouched_accepts_files_whose_md5_dvc_lock_records(trained, frame):
    write_lock(trained, lock_of(trained))

    model = load_vouched(trained, "lr", "tiny", 1)

    assert model.model_id == "lr_tiny_v1"
    assert model.predict(frame.head(2)) == read_model(Layout(trained), "lr", "tiny", 1).predict(
        frame.head(2)
    )


def test_load_vouched_takes_an_explicit_lock(trained):
    assert load_vouched(trained, "lr", "tiny", 1, lock=lock_of(trained)).model_id == "lr_tiny_v1"


def test_load_vouched_refuses_without_dvc_lock(trained):
    message = vouched_error(trained)

    assert message.startswith("models/tiny/lr_tiny_v1.pkl is not recorded in dvc.lock: refusing")


def test_load_vouched_refuses_an_unrecorded_card(trained):
    lock = lock_of(trained)
    del lock["models/tiny/lr_tiny_v1.json"]
    write_lock(trained, lock)

    assert vouched_error(trained).startswith(
        "models/tiny/lr_tiny_v1.json is not recorded in dvc.lock"
    )


def test_load_vouched_refuses_another_md5_without_unpickling(trained):
    lock = lock_of(trained)
    write_lock(trained, lock)
    path = Layout(trained).model("lr", "tiny", 1)
    path.write_bytes(b"not a pickle: loading it would fail differently")

    message = vouched_error(trained)

    assert message.startswith(
        f"models/tiny/lr_tiny_v1.pkl has md5 {md5_file(path)}, not the "
        f"{lock['models/tiny/lr_tiny_v1.pkl']} dvc.lock records: refusing to load it"
    )


def test_load_vouched_refuses_a_card_edited_after_the_run(trained):
    write_lock(trained, lock_of(trained))
    edit_card(Layout(trained), "lr", lambda c: c["libraries"].update(numpy="0"))

    assert vouched_error(trained).startswith("models/tiny/lr_tiny_v1.json has md5 ")


def test_load_vouched_refuses_a_swapped_model_with_its_own_lock_entry(trained):
    """dvc.lock vouches per path: rf's files under lr's name are refused."""
    lock = lock_of(trained)
    write_lock(trained, lock)
    layout = Layout(trained)
    layout.model("lr", "tiny", 1).write_bytes(layout.model("rf", "tiny", 1).read_bytes())

    assert "has md5" in vouched_error(trained)


def test_load_vouched_missing_model(trained):
    write_lock(trained, lock_of(trained))

    message = vouched_error(trained, version=2)

    assert message == "models/tiny/lr_tiny_v2.pkl is missing: run the pipeline (make repro)"


def test_load_vouched_still_checks_the_card(trained):
    edit_card(Layout(trained), "lr", shift_first_proba(0.05))
    write_lock(trained, lock_of(trained))  # a lock that vouches for the edited card

    assert "no longer gives the probabilities" in vouched_error(trained)


def test_lock_md5s_reads_every_file_output(tmp_path):
    (tmp_path / "dvc.lock").write_text(
        """schema: '2.0'
stages:
  featurize@tiny:
    cmd: python -m stages.featurize --dataset tiny
    outs:
    - path: data/processed/tiny
      hash: md5
      md5: aaa.dir
  train@tiny-lr:
    outs:
    - path: models/tiny/lr_tiny_v1.pkl
      md5: bbb
    - path: models/tiny/lr_tiny_v1.json
      md5: ccc
    - path: models/tiny/no_md5.pkl
  evaluate:
    deps: []
  empty:
""",
        encoding="utf-8",
    )

    assert lock_md5s(tmp_path) == {
        "data/processed/tiny": "aaa.dir",
        "models/tiny/lr_tiny_v1.pkl": "bbb",
        "models/tiny/lr_tiny_v1.json": "ccc",
    }


@pytest.mark.parametrize("text", [None, "", "stages: [\n", "- a\n", "stages: 5\n"])
def test_lock_md5s_without_a_usable_lock_is_empty(tmp_path, text):
    if text is not None:
        (tmp_path / "dvc.lock").write_text(text, encoding="utf-8")

    assert lock_md5s(tmp_path) == {}
