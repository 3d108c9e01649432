"""What the API and the batch CLI decide follows the model card: the threshold train chose
(``evaluate.threshold: auto``), the calibrated probabilities (``train.<algo>.calibration``),
and no answer by dataset when the leaderboard promoted no model (the ``min_score`` gate)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabml.artifact import read_model
from tabml.layout import Layout
from tabml.serving import predict
from tabml.serving.settings import Settings
from tests.helpers import dvc, error_lines
from tests.serving.conftest import DATASET, json_rows, make_client

LR = f"lr_{DATASET}_v1"


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory, project: Path) -> Path:
    """The serving project with lr retrained by the real pipeline under
    ``evaluate.threshold: auto`` and ``train.lr.calibration: sigmoid``."""
    import shutil

    root = Path(shutil.copytree(project, tmp_path_factory.mktemp("decided") / "project"))
    params_file = root / "params.yaml"
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    params["evaluate"]["threshold"] = "auto"
    params["train"]["lr"]["calibration"] = "sigmoid"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    dvc("repro", "--single-item", f"train@{DATASET}-lr", cwd=root)  # dvc.lock vouches for it
    return root


def _predict(root: Path, rows: list[dict]) -> dict:
    with make_client(Settings(root=root)) as client:
        response = client.post("/predict", json={"rows": rows, "model_id": LR})
        assert response.status_code == 200, response.text
        return response.json()


def test_threshold_auto_and_calibration_change_what_predict_answers(project, decided, test_rows):
    rows = json_rows(test_rows.head(200))
    plain, tuned = _predict(project, rows), _predict(decided, rows)
    card = read_model(Layout(decided), "lr", DATASET, 1).card

    assert plain["threshold"] == 0.5
    assert card.calibration == "sigmoid" and card.threshold_rule.startswith("auto: max F1")
    assert tuned["threshold"] == card.threshold != 0.5
    positive = card.positive_class
    proba = [p["probabilities"][positive] for p in tuned["predictions"]]
    assert proba != [p["probabilities"][positive] for p in plain["predictions"]]  # calibrated
    expected = [positive if p >= card.threshold else card.classes[0] for p in proba]
    assert [p["prediction"] for p in tuned["predictions"]] == expected
    changed = sum(
        a["prediction"] != b["prediction"]
        for a, b in zip(plain["predictions"], tuned["predictions"], strict=True)
    )
    assert changed > 0  # the decision moved, not only the numbers


def test_the_batch_cli_uses_the_cards_threshold(decided, test_rows, tmp_path):
    source, out = tmp_path / "rows.csv", tmp_path / "out.csv"
    test_rows.head(200).to_csv(source, index=False)
    argv = ["--root", str(decided), "--model", LR, "--input", str(source), "--output", str(out)]
    assert predict.main(argv) == 0

    card = read_model(Layout(decided), "lr", DATASET, 1).card
    scored = pd.read_csv(out)
    proba = scored[f"proba_{card.positive_class}"]
    expected = proba.ge(card.threshold).map({True: card.positive_class, False: card.classes[0]})
    assert scored["prediction"].tolist() == expected.tolist()
    assert (proba.between(0.5, card.threshold, inclusive="left")).any() or (
        proba.between(card.threshold, 0.5, inclusive="left")
    ).any()  # some rows are decided differently than at 0.5


def _no_champion(root: Path) -> str:
    path = Layout(root).leaderboard(DATASET)
    board = json.loads(path.read_text(encoding="utf-8"))
    reason = "gate: the best CV roc_auc, xgb 0.6100 ± 0.0100, is < evaluate.min_score 0.7"
    board.update(champion=None, champion_model=None, reason=reason, min_score=0.7)
    path.write_text(json.dumps(board), encoding="utf-8")
    return reason


def test_no_champion_is_a_409_with_the_reason_and_model_ids_still_work(project_copy, test_rows):
    reason = _no_champion(project_copy)
    rows = json_rows(test_rows.head(2))
    with make_client(Settings(root=project_copy)) as client:
        response = client.post("/predict", json={"rows": rows, "dataset": DATASET})
        assert response.status_code == 409
        detail = response.json()["detail"]
        assert detail == (
            f"dataset {DATASET!r} has no champion: {reason}; give a model_id to use one of "
            "its models anyway"
        )
        csv = test_rows.head(2).to_csv(index=False).encode()
        upload = client.post(
            "/validate", files={"file": ("r.csv", csv, "text/csv")}, data={"dataset": DATASET}
        )
        assert upload.status_code == 409 and upload.json()["detail"] == detail
        by_id = client.post("/predict", json={"rows": rows, "model_id": LR})
        assert by_id.status_code == 200
        assert client.get("/health").json()["status"] == "ok"  # a decision, not a fault


def test_no_champion_stops_the_batch_cli_by_dataset_with_the_reason(
    project_copy, test_rows, tmp_path, capsys
):
    reason = _no_champion(project_copy)
    source = tmp_path / "rows.csv"
    test_rows.head(2).to_csv(source, index=False)
    argv = ["--root", str(project_copy), "--dataset", DATASET, "--input", str(source)]
    argv += ["--output", str(tmp_path / "out.csv")]

    assert predict.main(argv) == 2

    lines = error_lines(capsys.readouterr().err)
    assert lines == [
        f"error: dataset {DATASET!r} has no champion: {reason}; give --model to use one of its "
        "models anyway"
    ]
    assert not (tmp_path / "out.csv").exists()
