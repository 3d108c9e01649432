"""Hostile numbers (issue 8 item 3): a value within the float32 limit that overflows once
scaled must be refused with the same one-line 422-class message whichever way it is scored
(sklearn pipeline, numpy fast path, /predict, /validate, the batch CLI), never a 500, a
traceback, or a silent 200 of the fast path.

The models are trained by the real stage mains on a tiny frame with a 0/1 column (``female``,
std 0.5, as in churn) and a column with a tiny spread (``rate``, std ~1e-4), so ``1e35`` there
scales to ~1e39: past ``FLOAT_LIMIT``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tabml.artifact import read_model
from tabml.errors import SchemaError
from tabml.files import md5_file
from tabml.layout import Layout
from tabml.model import Model
from tabml.schema import FLOAT_LIMIT, validate
from tabml.serving.scoring import CSV_FIRST_LINE, Predictor
from tests.helpers import batch_cli
from tests.unit.conftest import make_frame, make_project

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

ALGOS = ("lr", "rf")


def hostile_frame(n: int = 80) -> pd.DataFrame:
    frame = make_frame(n, seed=3)
    rng = np.random.default_rng(3)
    frame.insert(0, "female", rng.integers(0, 2, n))
    frame.insert(1, "rate", np.round(0.05 + rng.normal(0.0, 1e-4, n), 7))
    return frame


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lr and rf trained on ``hostile_frame``; dvc.lock records the model files' md5 as a
    ``dvc repro`` would (the server and the batch CLI load only models it vouches for)."""
    root = make_project(tmp_path_factory.mktemp("values") / "project", hostile_frame(), ALGOS)
    layout, relative = Layout(root), Layout(Path("."))
    outs = []
    for algo in ALGOS:
        for local, rel in (
            (layout.model(algo, "tiny", 1), relative.model(algo, "tiny", 1)),
            (layout.card(algo, "tiny", 1), relative.card(algo, "tiny", 1)),
        ):
            outs.append({"path": str(rel), "md5": md5_file(local)})
    lock = {"schema": "2.0", "stages": {"train@tiny": {"cmd": "train", "outs": outs}}}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock), encoding="utf-8")
    return root


def load(project: Path, algo: str) -> Model:
    return read_model(Layout(project), algo, "tiny", 1)


def row(model: Model, **values: object) -> dict[str, object]:
    """A valid raw row (the card's first check row, all values present) with ``values``."""
    base = {"female": 1, "rate": 0.05, "income": 40.0, "age": 33, "color": "red"}
    assert {c.name for c in model.schema} == set(base)
    return {**base, **values}


def message(predictor: Predictor, rows: list[dict[str, object]]) -> str:
    with pytest.raises(SchemaError) as info:
        predictor.predict_proba(validate(rows, predictor.model.schema))
    return str(info.value)


def scaled_overflow(column: str, value: float, row: int = 1, line: str = "") -> str:
    return (
        f"column {column!r}, row {row}{line}: {value!r} is out of range for this model "
        f"(its scaled value exceeds {FLOAT_LIMIT:.3g})"
    )


def test_the_columns_are_what_the_cases_assume(project):
    model = load(project, "lr")
    numeric = model.pipeline[0].named_transformers_["num"]
    names = list(numeric.feature_names_in_)  # missing indicators come after them
    scale = dict(zip(names, numeric.named_steps["scale"].scale_[: len(names)], strict=True))

    assert 0.4 < scale["female"] < 0.6
    assert scale["rate"] < 1e-3
    assert 1e35 / scale["rate"] > FLOAT_LIMIT > 1e35  # valid raw, overflowing once scaled


CASES = [
    ("female", 1e308, "is out of range (at most 3.4e+38 in size)"),  # the request
    ("female", 3.4e38, "scaled"),  # FLOAT_LIMIT itself: pandas reads its text 1 ulp over
    ("female", -3e38, "scaled"),
    ("rate", 1e35, "scaled"),
    ("rate", -1e35, "scaled"),
]


def expected(column: str, value: float, reason: str, line: str = "") -> str:
    if reason == "scaled":
        return scaled_overflow(column, value, line=line)
    return f"column {column!r}, row 1{line}: {value!r} {reason}"


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize(("column", "value", "reason"), CASES, ids=repr)
def test_sklearn_and_fast_path_refuse_alike(project, algo, column, value, reason):
    model = load(project, algo)
    fast, slow = Predictor(model, fast_path=True), Predictor(model, fast_path=False)
    assert fast.compiled is not None and slow.compiled is None
    rows = [row(model), row(model, **{column: value})]

    from_fast, from_slow = message(fast, rows), message(slow, rows)

    assert from_fast == from_slow == expected(column, value, reason)


@pytest.mark.parametrize("algo", ALGOS)
def test_large_values_that_scale_to_finite_numbers_score_alike(project, algo):
    """The guard refuses only what overflows: 1e35 in the 0/1 column scales to 2e35."""
    model = load(project, algo)
    rows = [row(model), row(model, female=1e35), row(model, income=-1e30)]
    batch = validate(rows, model.schema)

    fast = Predictor(model, fast_path=True).predict_proba(batch)
    slow = Predictor(model, fast_path=False).predict_proba(batch)

    np.testing.assert_array_equal(fast, slow)
    assert np.isfinite(fast).all()


@pytest.fixture(scope="module", params=[True, False], ids=["fast", "sklearn"])
def client(project: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """A started app over ``project``, with the fast path on, then off."""
    from tabml.serving.app import create_app
    from tabml.serving.settings import Settings

    with TestClient(create_app(Settings(root=project, fast_path=request.param))) as c:
        yield c


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize(("column", "value", "reason"), CASES, ids=repr)
def test_predict_and_validate_answer_422(project, client, algo, column, value, reason):
    model_id = f"{algo}_tiny_v1"
    model = load(project, algo)
    rows = [row(model), row(model, **{column: value})]
    upload = pd.DataFrame(rows).to_csv(index=False).encode()

    predicted = client.post("/predict", json={"model_id": model_id, "rows": rows})
    validated = client.post(
        "/validate", data={"model_id": model_id}, files={"file": ("x.csv", upload)}
    )

    assert (predicted.status_code, validated.status_code) == (422, 422)
    assert predicted.json()["detail"] == expected(column, value, reason)
    line = f" (CSV line {1 + CSV_FIRST_LINE})"
    assert validated.json()["detail"] == expected(column, value, reason, line)


# One process each (seconds of imports): the request, and an overflow once scaled.
CLI_CASES = [("lr", *CASES[0]), ("lr", *CASES[3]), ("rf", *CASES[3])]


@pytest.mark.parametrize(("algo", "column", "value", "reason"), CLI_CASES, ids=repr)
def test_batch_cli_exits_2_with_one_line(project, tmp_path, algo, column, value, reason):
    model = load(project, algo)
    source, output = tmp_path / "rows.csv", tmp_path / "out.csv"
    pd.DataFrame([row(model), row(model, **{column: value})]).to_csv(source, index=False)

    files = ("--input", str(source), "--output", str(output))
    proc = batch_cli("--model", f"{algo}_tiny_v1", *files, "--root", str(project))

    line = f" (CSV line {1 + CSV_FIRST_LINE})"
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"error: {expected(column, value, reason, line)}\n"
    assert not output.exists()
