"""Sparse, bounded one-hot encoding (issue 9): a 50,000-level column costs megabytes, not
gigabytes, through featurize, train and the served fast path.

- ``build_transformer`` one-hot encodes sparsely (CSR when mostly zeros) and sends columns
  with at least ``max_categories`` levels to a grouping encoder (block "many": the rarer
  levels share one "infrequent" column, which unseen categories join);
- the 60,000-row file of the issue (a 50,000-level column) goes through the ``featurize`` core
  and ``fit_estimator`` (rf, xgb, lr) under 1 GB, measured in a child process;
- the numpy fast path replicates grouped and sparse transformers bit for bit;
- a random forest grown in batches (``_fit_forest``, for progress lines) is the one-shot forest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stages.train import _fit_forest, build_estimator
from tabml.features import build_transformer
from tabml.params import FeaturizeParams, RFParams
from tabml.schema import conform, infer_schema
from tests.unit.conftest import (
    REPO,
    SNAPSHOT,
    make_frame,
    project_params,
    run_stages,
    write_params,
)

GB = 1 << 30

# --- build_transformer: which columns are grouped, sparse or dense ---------------------------


def coded_frame(n: int = 400, levels: int = 60, seed: int = 0) -> pd.DataFrame:
    """``make_frame`` plus ``code`` (``levels`` levels, a few frequent and many rare ones)
    and ``shade`` (three levels)."""
    frame = make_frame(n, seed=seed)
    rng = np.random.default_rng(seed)
    frequent = rng.integers(0, 5, n)  # k0..k4: most rows
    rare = rng.integers(5, levels, n)
    pick = rng.random(n) < 0.6
    frame["code"] = [f"k{f if p else s}" for f, s, p in zip(frequent, rare, pick, strict=True)]
    frame["shade"] = rng.choice(["light", "dark", "mid"], n)
    return frame


def fitted(frame: pd.DataFrame, params: FeaturizeParams, *, dense: bool = False):
    inputs = frame.drop(columns="y")
    schema = infer_schema(inputs)
    transformer = build_transformer(schema, params, dense=dense)
    return transformer, transformer.fit_transform(conform(inputs, schema)), schema


def test_columns_with_many_levels_are_grouped_the_others_not():
    frame = coded_frame()
    levels = frame["code"].nunique()

    transformer, X, _ = fitted(frame, FeaturizeParams(max_categories=10))

    parts = {name: columns for name, _, columns in transformer.transformers}
    assert parts == {"num": ["income", "age"], "cat": ["color", "shade"], "many": ["code"]}
    names = [str(n) for n in transformer.get_feature_names_out()]
    code = [n for n in names if n.startswith("many__code_")]
    assert len(code) == 10 < levels  # nine most frequent levels and "infrequent"
    assert code[-1] == "many__code_infrequent_sklearn"
    assert {f"many__code_k{i}" for i in range(5)} <= set(code)
    assert X.shape == (len(frame), len(names))
    onehot = transformer.named_transformers_["many"].named_steps["onehot"]
    assert onehot.handle_unknown == "infrequent_if_exist" and onehot.max_categories == 10
    cat = transformer.named_transformers_["cat"].named_steps["onehot"]
    assert cat.handle_unknown == "ignore" and cat.max_categories is None


def test_a_column_with_exactly_max_categories_levels_is_grouped():
    frame = coded_frame(levels=8)
    levels = frame["code"].nunique()

    transformer, _, _ = fitted(frame, FeaturizeParams(max_categories=levels))
    fewer, _, _ = fitted(frame, FeaturizeParams(max_categories=levels + 1))

    assert dict((n, c) for n, _, c in transformer.transformers)["many"] == ["code"]
    assert "many" not in [n for n, _, _ in fewer.transformers]


def test_min_category_frequency_groups_every_categorical_column():
    transformer, _, _ = fitted(coded_frame(), FeaturizeParams(min_category_frequency=5))

    parts = {name: columns for name, _, columns in transformer.transformers}
    assert parts == {"num": ["income", "age"], "many": ["color", "code", "shade"]}
    onehot = transformer.named_transformers_["many"].named_steps["onehot"]
    assert (onehot.min_frequency, onehot.max_categories) == (5, 100)


def test_no_limit_keeps_every_level_in_one_ignoring_encoder():
    frame = coded_frame()

    transformer, X, _ = fitted(frame, FeaturizeParams(max_categories=None))

    assert [n for n, _, _ in transformer.transformers] == ["num", "cat"]
    assert X.shape[1] == len(transformer.get_feature_names_out())
    names = [str(n) for n in transformer.get_feature_names_out()]
    assert len([n for n in names if n.startswith("cat__code_")]) == frame["code"].nunique()
    assert not any("infrequent" in n for n in names)


def test_mostly_zero_output_is_csr_and_dense_forces_an_ndarray_of_the_same_values():
    frame = coded_frame()
    params = FeaturizeParams(max_categories=None)

    sparse, X, _ = fitted(frame, params)
    dense, D, _ = fitted(frame, params, dense=True)

    assert sparse.sparse_output_ and sp.issparse(X) and X.format == "csr"
    assert X.nnz / np.prod(X.shape) < 0.3
    assert not dense.sparse_output_ and type(D) is np.ndarray
    np.testing.assert_array_equal(X.toarray(), D)


def test_mostly_non_zero_output_stays_dense():
    transformer, X, _ = fitted(make_frame(40), FeaturizeParams())

    assert not transformer.sparse_output_ and type(X) is np.ndarray


def test_unseen_and_infrequent_levels_share_the_infrequent_column():
    frame = coded_frame()
    transformer, _, schema = fitted(frame, FeaturizeParams(max_categories=10))
    names = [str(n) for n in transformer.get_feature_names_out()]
    rare = frame["code"].value_counts().index[-1]  # a level seen once or twice
    rows = frame.drop(columns="y").head(3).assign(code=["k0", rare, "never-seen"])

    X = transformer.transform(conform(rows, schema, strict_categories=False))

    X = X.toarray() if sp.issparse(X) else X
    code = [i for i, n in enumerate(names) if n.startswith("many__code_")]
    other = names.index("many__code_infrequent_sklearn")
    assert X[0, names.index("many__code_k0")] == 1.0
    assert X[1, other] == X[2, other] == 1.0
    assert X[:, code].sum(axis=1).tolist() == [1.0, 1.0, 1.0]


# --- the file: 60,000 rows, one 50,000-level column, under 1 GB ---------------------

CHILD = textwrap.dedent(
    """
    import json, logging, sys
    import numpy as np, pandas as pd
    import scipy.sparse as sp
    from sklearn.pipeline import Pipeline

    from stages.featurize import featurize
    from stages.train import fit_estimator
    from tabml.features import DataInfo
    from tabml.params import DatasetParams, FeaturizeParams, LRParams, RFParams, XGBParams
    from tabml.schema import validate

    max_categories, algos = json.loads(sys.argv[1]), sys.argv[2].split(",")
    ROWS, LEVELS, FREQUENT = 60_000, 50_000, 100
    rng = np.random.default_rng(0)
    # 49,900 levels once each, 100 levels sharing the other 10,100 rows.
    codes = np.concatenate(
        [np.arange(FREQUENT, LEVELS), rng.integers(0, FREQUENT, ROWS - LEVELS + FREQUENT)]
    )
    rng.shuffle(codes)
    x1 = rng.normal(size=ROWS)
    shade = rng.choice(["red", "green", "blue"], ROWS)
    signal = x1 + (codes < 40) + 0.5 * (shade == "red") + rng.normal(size=ROWS)
    frame = pd.DataFrame({
        "x1": np.where(rng.random(ROWS) < 0.05, np.nan, x1),
        "x2": rng.exponential(size=ROWS).round(3),
        "age": rng.integers(18, 90, ROWS),
        "shade": shade,
        "grade": rng.choice(list("ABCDE"), ROWS),
        "code": np.char.add("c", codes.astype(str)).astype(object),
        "y": np.where(signal > 0.7, "yes", "no"),
    })
    train, test = frame.iloc[:45_000], frame.iloc[45_000:].reset_index(drop=True)
    spec = DatasetParams(source="big.csv", target="y", positive_class="yes", snapshot="20251130")
    info = DataInfo(snapshot="20251130", train_file="t", train_md5="0" * 32, train_rows=45_000)
    params = FeaturizeParams(max_categories=max_categories)
    (X, y), (X_test, y_test), features, transformer = featurize(
        train, test, "big", spec, params, info
    )
    counts = train["code"].value_counts()
    rare, frequent = counts.index[-1], counts.index[0]
    raw = [
        {"x1": 0.1, "x2": 1.0, "age": 40, "shade": "red", "grade": "A", "code": frequent},
        {"x1": 0.1, "x2": 1.0, "age": 40, "shade": "red", "grade": "A", "code": rare},
        {"x1": 0.1, "x2": 1.0, "age": 40, "shade": "red", "grade": "A", "code": "c-unseen"},
        {"x1": None, "x2": None, "age": None, "shade": None, "grade": "Z", "code": None},
    ]
    rows = validate(raw, features.columns, strict_categories=False).frame(features.columns)
    encoded = transformer.transform(rows)
    names = features.feature_names
    code = [i for i, n in enumerate(names) if "__code_" in n]
    small = {
        "rf": RFParams(n_estimators=10, max_depth=8, n_jobs=2, seed=0),
        "xgb": XGBParams(n_estimators=10, early_stopping_rounds=None, n_jobs=2, seed=0),
        "lr": LRParams(max_iter=30),
    }
    models = {}
    for algo in algos:
        estimator, _ = fit_estimator(algo, small[algo], X, y)
        pipeline = Pipeline([("preprocess", transformer), ("model", estimator)])
        models[algo] = {
            "proba": pipeline.predict_proba(rows).tolist(),
            "test_accuracy": float(np.mean(estimator.predict(X_test) == y_test)),
        }
    status = open("/proc/self/status").read()
    peak_kib = int(status.split("VmHWM:")[1].split()[0])
    print(json.dumps({
        "peak_bytes": peak_kib * 1024,
        "sparse": [sp.issparse(X), sp.issparse(X_test), sp.issparse(encoded)],
        "shape": list(X.shape),
        "test_rows": X_test.shape[0],
        "matrix_bytes": int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes),
        "columns": [c.name for c in features.columns],
        "code_levels": len(next(c for c in features.columns if c.name == "code").categories),
        "code_features": [names[i] for i in code],
        "encoded_code": encoded[:, code].toarray().tolist(),
        "models": models,
    }))
    """
)


def run_child(max_categories: int | None, algos: tuple[str, ...]) -> dict:
    """The featurize core and ``fit_estimator`` on the issue's data, in a fresh process.

    Its peak is VmHWM, the high-water mark of the child's own address space: ru_maxrss
    would not do, since Linux carries into it the resident size of the process that
    spawned the child (here the whole test session) at exec time."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(max_categories), ",".join(algos)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def assert_scores_raw_rows(result: dict, algos: tuple[str, ...]) -> None:
    assert set(result["models"]) == set(algos)
    for algo, model in result["models"].items():
        proba = np.array(model["proba"])
        assert proba.shape == (4, 2) and np.isfinite(proba).all(), algo
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
        assert model["test_accuracy"] > 0.6, algo  # it learnt something (the base rate is ~0.5)


def test_a_50000_level_column_featurizes_and_trains_under_1_gb():
    """Done when 2 of issue 9: the dense encoding asked for a 9.95 GiB array here."""
    algos = ("rf", "xgb", "lr")

    result = run_child(100, algos)

    assert result["peak_bytes"] < GB, f"peak {result['peak_bytes'] / GB:.2f} GiB"
    assert result["sparse"] == [True, True, True]
    assert "code" in result["columns"] and result["code_levels"] > 30_000  # a feature, kept
    rows, width = result["shape"]
    assert (rows, result["test_rows"]) == (45_000, 15_000)
    code = result["code_features"]
    assert len(code) == 100 and code[-1] == "many__code_infrequent_sklearn"  # max_categories
    assert width < 150  # numbers, indicators, shade and grade, and 100 code columns
    assert result["matrix_bytes"] < 10 * (1 << 20)
    frequent, rare, unseen, missing = result["encoded_code"]
    assert frequent.index(1.0) < len(code) - 1 and sum(frequent) == 1.0
    assert rare == unseen == missing == [0.0] * (len(code) - 1) + [1.0]  # all infrequent
    assert_scores_raw_rows(result, algos)


def test_without_a_category_limit_the_encoding_stays_sparse_and_under_1_gb():
    algos = ("lr", "xgb")

    result = run_child(None, algos)

    assert result["peak_bytes"] < GB, f"peak {result['peak_bytes'] / GB:.2f} GiB"
    assert result["sparse"] == [True, True, True]
    rows, width = result["shape"]
    code = result["code_features"]
    assert len(code) == result["code_levels"]  # one column per train level
    assert width > 30_000 and rows == 45_000
    assert not any("infrequent" in n for n in code)
    frequent, rare, unseen, missing = result["encoded_code"]
    assert sum(frequent) == sum(rare) == 1.0
    assert sum(unseen) == sum(missing) == 0.0  # never seen in train: ignored, all zeros
    assert result["matrix_bytes"] < 10 * (1 << 20)
    assert_scores_raw_rows(result, algos)


# --- the random forest grown in batches --------------------------------------------------------


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("n_estimators", [120, 7])
def test_a_forest_grown_in_batches_is_the_one_shot_forest(kind, n_estimators, caplog):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)) * (rng.random((300, 6)) < 0.4)
    y = (X[:, 0] + X[:, 1] + rng.normal(0, 0.5, 300) > 0).astype(int)
    X = sp.csr_matrix(X) if kind == "csr" else X
    params = RFParams(n_estimators=n_estimators, max_depth=5, n_jobs=1, seed=3)
    one_shot = build_estimator("rf", params).fit(X, y)

    with caplog.at_level("INFO", logger="stages.train"):
        grown = _fit_forest(build_estimator("rf", params), X, y)

    assert len(grown.estimators_) == n_estimators
    for ours, theirs in zip(grown.estimators_, one_shot.estimators_, strict=True):
        assert ours.random_state == theirs.random_state
        a, b = ours.tree_.__getstate__(), theirs.tree_.__getstate__()
        assert a["node_count"] == b["node_count"]
        np.testing.assert_array_equal(a["nodes"], b["nodes"])
        np.testing.assert_array_equal(a["values"], b["values"])
    assert grown.get_params()["warm_start"] is False
    assert grown.get_params()["n_estimators"] == n_estimators
    np.testing.assert_array_equal(grown.predict_proba(X), one_shot.predict_proba(X))
    steps = [r.getMessage() for r in caplog.records if r.name == "stages.train"]
    expected = [*range(50, n_estimators, 50), n_estimators]
    assert steps == [f"trees {n}/{n_estimators}" for n in expected]


# --- the numpy fast path: grouped categories and sparse transformers -------------------------


@pytest.fixture(scope="module")
def grouped_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rf, xgb and lr trained by the stage mains on ``coded_frame`` with max_categories 20:
    ``code`` is grouped (block "many") and the transformer's output is CSR (a density of
    about 6 in 30: numbers count as non-zero)."""
    root = tmp_path_factory.mktemp("grouped")
    raw = project_params(algos=("rf", "xgb", "lr"))
    raw["featurize"].update(max_categories=20, min_category_frequency=1)
    write_params(root / "params.yaml", raw)
    coded_frame(400, levels=60).to_csv(root / "src.csv", index=False)
    return run_stages(root, ("rf", "xgb", "lr"))


def served(project: Path, algo: str):
    from tabml.artifact import read_model
    from tabml.layout import Layout
    from tabml.model import single_threaded

    model = read_model(Layout(project), algo, "tiny", 1)
    single_threaded(model.pipeline)  # the server's setting: one summation order
    return model


def test_the_stage_mains_store_and_train_on_a_csr_matrix(grouped_project):
    from tabml.artifact import read_model
    from tabml.features import load_features, load_matrix
    from tabml.layout import Layout

    layout = Layout(grouped_project)
    features, _ = load_features(layout, "tiny", SNAPSHOT)

    X, y = load_matrix(layout.processed("tiny", "train", SNAPSHOT, "npz"))

    assert sp.issparse(X) and X.format == "csr" and X.shape == (300, len(features.feature_names))
    assert len(y) == 300
    for algo in ("rf", "xgb", "lr"):
        card = read_model(layout, algo, "tiny", 1).card
        assert card.train_metrics["n_features"] == X.shape[1]
        assert card.feature_names == features.feature_names


@pytest.mark.parametrize("algo", ["rf", "xgb", "lr"])
def test_grouped_sparse_models_get_a_verified_fast_path(grouped_project, algo):
    from tabml.schema import validate
    from tabml.serving.fastpath import try_compile

    model = served(grouped_project, algo)
    transformer = model.pipeline[0]
    assert "many" in transformer.named_transformers_ and transformer.sparse_output_
    frame = coded_frame(300, levels=80, seed=7)  # other rows: rare, frequent and unseen codes
    frame.loc[[0, 1], "code"] = ["never-seen", None]
    batch = validate(frame.drop(columns="y"), model.schema, strict_categories=False)

    compiled = try_compile(model)

    assert compiled is not None and compiled.sparse
    got = compiled.predict_proba(batch)
    np.testing.assert_array_equal(got, model.pipeline.predict_proba(batch.frame(model.schema)))
    one = validate(frame.drop(columns="y").head(1), model.schema, strict_categories=False)
    np.testing.assert_array_equal(
        compiled.predict_proba(one), model.pipeline.predict_proba(one.frame(model.schema))
    )


def test_the_fast_path_sends_an_unseen_category_to_the_infrequent_column(grouped_project):
    from tabml.schema import validate
    from tabml.serving.fastpath import compile_model

    model = served(grouped_project, "lr")
    names = model.card.feature_names
    encoder = model.pipeline[0].named_transformers_["many"].named_steps["onehot"]
    rare = encoder.infrequent_categories_[0][0]  # seen in training, grouped
    rows = pd.DataFrame(
        {"income": [40.0] * 3, "age": [30] * 3, "color": ["red"] * 3, "shade": ["dark"] * 3}
    ).assign(code=["k0", rare, "never-seen"])
    batch = validate(rows, model.schema, strict_categories=False)

    features = compile_model(model).features(batch)

    assert sp.issparse(features) and features.format == "csr"
    expected = model.pipeline[0].transform(batch.frame(model.schema))
    np.testing.assert_array_equal(features.toarray(), expected.toarray())
    other = names.index("many__code_infrequent_sklearn")
    dense = features.toarray()
    assert dense[0, names.index("many__code_k0")] == 1.0 and dense[0, other] == 0.0
    assert dense[1, other] == dense[2, other] == 1.0


def test_the_fast_path_ignores_an_unseen_category_without_grouping(tmp_path):
    """max_categories null: the one-hot columns of an unseen category stay all zeros."""
    from tabml.schema import validate
    from tabml.serving.fastpath import compile_model, try_compile

    raw = project_params(algos=("lr",))
    raw["featurize"].update(max_categories=None)
    write_params(tmp_path / "params.yaml", raw)
    coded_frame(200, levels=60).to_csv(tmp_path / "src.csv", index=False)
    model = served(run_stages(tmp_path, ("lr",)), "lr")
    assert "many" not in model.pipeline[0].named_transformers_
    rows = pd.DataFrame(
        {"income": [40.0], "age": [30], "color": ["red"], "shade": ["dark"], "code": ["nope"]}
    )
    batch = validate(rows, model.schema, strict_categories=False)

    compiled = try_compile(model)

    assert compiled is not None and compiled.sparse == model.pipeline[0].sparse_output_
    features = compile_model(model).features(batch)
    dense = features.toarray() if sp.issparse(features) else features
    code = [i for i, n in enumerate(model.card.feature_names) if n.startswith("cat__code_")]
    assert dense[0, code].sum() == 0.0
    np.testing.assert_array_equal(
        compiled.predict_proba(batch), model.pipeline.predict_proba(batch.frame(model.schema))
    )


@pytest.fixture(scope="module")
def wide_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lr and rf on 3,000 rows of ``coded_frame`` with 3,000 code levels and no category
    limit: some 800 one-hot columns for ``code``, more than the 64 probe rows of ``verify``."""
    root = tmp_path_factory.mktemp("wide")
    raw = project_params(algos=("lr", "rf"))
    raw["featurize"].update(max_categories=None)
    write_params(root / "params.yaml", raw)
    coded_frame(3000, levels=3000).to_csv(root / "src.csv", index=False)
    return run_stages(root, ("lr", "rf"))


def test_verify_probes_missing_and_unseen_values_of_a_wide_column(wide_project):
    """A column with more levels than probe rows: the probes still hold a missing value and
    an unseen category, so a replica that mishandles them is never used."""
    import dataclasses

    from tabml.serving.fastpath import UNSEEN_PROBE, compile_model, probe_batch, verify

    model = served(wide_project, "lr")
    code = next(c for c in model.schema if c.name == "code")
    assert len(code.categories) > 64  # more than the probe rows
    compiled = compile_model(model)
    assert verify(model, compiled)

    probes = probe_batch(model.schema, compiled).categorical["code"]

    assert None in probes and UNSEEN_PROBE in probes
    assert len(set(probes) & set(code.categories)) == 62  # spread over the levels
    block = next(b for b in compiled.blocks if "code" in b.columns)
    j = block.columns.index("code")
    unknown = list(block.unknown)
    unknown[j] = block.index[j]["k0"]  # unseen read as k0 instead of ignored
    wrong = dataclasses.replace(
        compiled,
        blocks=tuple(
            dataclasses.replace(b, unknown=tuple(unknown)) if b is block else b
            for b in compiled.blocks
        ),
    )
    assert not verify(model, wrong)


@pytest.mark.parametrize("algo", ["lr", "rf"])
def test_a_sparse_replica_never_builds_the_dense_matrix(wide_project, algo):
    """10,000 rows (the server's max_rows) of a model with 37,000 one-hot columns would be
    3 GB as a dense float64 matrix: the replica builds the CSR matrix directly."""
    import tracemalloc

    from tabml.schema import validate
    from tabml.serving.fastpath import try_compile

    model = served(wide_project, algo)
    compiled = try_compile(model)
    assert compiled is not None and compiled.sparse
    frame = coded_frame(10_000, levels=3000, seed=5).drop(columns="y")
    batch = validate(frame, model.schema, strict_categories=False)
    dense_bytes = batch.n_rows * compiled.n_features * 8

    tracemalloc.start()
    try:
        features = compiled.features(batch)
        proba = compiled.proba(features)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert compiled.n_features > 500 and sp.issparse(features)
    assert peak < dense_bytes / 10, f"{peak / 1e6:.1f} MB, dense {dense_bytes / 1e6:.1f} MB"
    expected = model.pipeline[0].transform(batch.frame(model.schema))
    assert (features != expected).nnz == 0
    np.testing.assert_array_equal(proba, model.pipeline.predict_proba(batch.frame(model.schema)))
