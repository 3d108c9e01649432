"""A model file outlives this repository: it loads with joblib alone, and predicts what the
server predicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tabml.layout import Layout
from tests.helpers import standalone_predictions
from tests.serving.conftest import DATASET, MODEL_IDS, SNAPSHOT


def upload_proba(client, csv: bytes, model_id: str) -> np.ndarray:
    body = client.post(
        "/validate", files={"file": ("t.csv", csv, "text/csv")}, data={"model_id": model_id}
    ).json()
    return np.array([[p["probabilities"][c] for c in body["classes"]] for p in body["predictions"]])


def test_every_model_file_loads_without_this_repository_and_matches_the_server(
    project: Path, client, tmp_path: Path
) -> None:
    layout = Layout(project)
    # the only models are this project's (other datasets' folders hold just a .gitignore)
    assert [p.parent.name for p in layout.models_dir.glob("*/*.pkl")] == [DATASET] * len(MODEL_IDS)
    models = layout.dataset_models_dir(DATASET)
    files = sorted(p.stem for p in models.glob("*.pkl"))
    assert files == sorted(MODEL_IDS)
    test_csv = layout.interim(DATASET, "test", SNAPSHOT)
    empty = tmp_path / "empty"
    empty.mkdir()
    for model_id in files:
        card = models / f"{model_id}.json"
        assert json.loads(card.read_text())["model_id"] == model_id  # every model has its card
        got = standalone_predictions(models / f"{model_id}.pkl", card, test_csv, empty)
        assert got["type"] == "sklearn.pipeline.Pipeline"
        assert got["ours_loaded"] == []
        served = upload_proba(client, test_csv.read_bytes(), model_id)
        np.testing.assert_array_equal(np.array(got["proba"]), served)
        np.testing.assert_allclose(np.array(got["threaded"]), served, rtol=0, atol=1e-12)
    assert list(empty.iterdir()) == []
