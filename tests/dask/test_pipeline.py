"""The Dask engine end to end: a real ``dvc repro`` in a copy of this repository, on a Dask
cluster of 2 workers started with dask's own command line (as a real cluster is, and
reached through ``dask.address``), compared with the pandas engine on the same data, its
models cross-validated and ranked as the pandas engine's, and served by the unchanged API
and batch CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tabml.artifact import read_model
from tabml.daskengine import train as dask_train
from tabml.layout import Layout
from tabml.metrics import METRICS
from tabml.model import single_threaded
from tests.dask import synth
from tests.helpers import (
    VENV_BIN,
    batch_cli,
    copy_repo,
    dvc,
    free_ports,
    ran_stages,
    standalone_predictions,
    without_coverage,
)
from tests.naming import naming_violations

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

DASK, PANDAS = "synthdask", "synthpandas"
SNAPSHOT = "20250101"
ALGOS = ("rf", "xgb", "lr")
ROWS = 6000
HOLDOUT = 20_000  # fresh rows neither engine trained on: the AUC comparison's test set
CV_ROWS = 2000  # train.cv_rows: fewer than the ~4500 train rows, so CV runs on a sample


def dataset(name: str, engine: str) -> dict:
    return {
        "source": f"data/external/{name}/{name}.csv",
        "target": synth.TARGET,
        "positive_class": synth.POSITIVE,
        "snapshot": SNAPSHOT,
        "engine": engine,
    }


def settings(params: dict, name: str, engine: str, address: str = "") -> None:
    """One dataset, models big enough that two implementations of a forest agree."""
    params["datasets"] = {name: dataset(name, engine)}
    params["train"]["rf"]["n_estimators"] = 100
    params["train"]["xgb"]["n_estimators"] = 60
    params["train"]["cv_rows"] = CV_ROWS
    params["evaluate"]["threshold"] = "auto"  # each model's own, from its CV
    params["evaluate"]["importance_repeats"] = 1
    params["evaluate"]["importance_rows"] = 500
    params["dask"] = {"address": address, "blocksize": "64KiB"}


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Dask scheduler and 2 worker processes started as on a real cluster (``dask
    scheduler``, ``dask worker``); yields the address params give to ``dask.address``."""
    from distributed import Client

    (port,) = free_ports(1)
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("cluster")
    env = without_coverage()
    procs = []
    for name, args in (
        ("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]),
        (
            "worker",
            [
                "worker",
                address,
                "--nworkers",
                "2",
                "--nthreads",
                "1",
                "--memory-limit",
                "2GiB",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
            ],
        ),
    ):
        with (logs / f"{name}.log").open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [str(VENV_BIN / "dask"), *args],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except OSError:
                assert time.monotonic() < deadline, (logs / "scheduler.log").read_text()
                time.sleep(0.5)
        yield address
    finally:
        for proc in procs:  # a test cluster: killed whole (nannies and workers), not drained
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, scheduler: str) -> Path:
    """A copy of this repository with one Dask dataset, after ``dvc repro`` of its
    evaluate stage and everything it needs."""
    root = tmp_path_factory.mktemp("dask") / "repo"
    root.mkdir()
    synth.write(root / "data" / "external" / DASK / f"{DASK}.csv", ROWS)
    repo = copy_repo(root, lambda p: settings(p, DASK, "dask", scheduler))
    (repo / "dvc.lock").unlink(missing_ok=True)
    proc = dvc("repro", f"evaluate@{DASK}", cwd=repo)
    (repo.parent / "repro.log").write_text(proc.stdout + proc.stderr)
    return repo


@pytest.fixture(scope="module")
def pandas_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same rows through the pandas engine (its stages run in this process)."""
    import yaml

    from stages import featurize, ingest, split, train

    root = tmp_path_factory.mktemp("pandas")
    synth.write(root / "data" / "external" / PANDAS / f"{PANDAS}.csv", ROWS)
    params = yaml.safe_load((Path(__file__).parents[2] / "params.yaml").read_text())
    settings(params, PANDAS, "pandas")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    common = ["--root", str(root), "--params", str(root / "params.yaml"), "--dataset", PANDAS]
    for stage in (ingest, split, featurize):
        assert stage.main(common) == 0
    for algo in ALGOS:
        assert train.main([*common, "--algo", algo]) == 0
    return root


def load(root: Path, algo: str, name: str):
    model = read_model(Layout(root), algo, name, 1)
    single_threaded(model.pipeline)
    return model


def split_rows(root: Path, part: str) -> pd.DataFrame:
    files = Layout(root).interim_parts(DASK, part, SNAPSHOT)
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def processed_rows(root: Path, part: str) -> pd.DataFrame:
    files = Layout(root).processed_parts(DASK, part, SNAPSHOT)
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def test_repro_runs_the_dask_stages_and_writes_partitions(repo: Path) -> None:
    log = (repo.parent / "repro.log").read_text()
    expected = {f"{s}@{DASK}" for s in ("ingest", "split", "featurize", "evaluate")}
    trains = {f"{s}@{DASK}-{a}" for s in ("tune", "train") for a in ALGOS}  # tune: off, {}
    assert ran_stages(log) == expected | trains
    layout = Layout(repo)
    raw = layout.raw(DASK, SNAPSHOT)
    assert raw.read_bytes() == (repo / "data" / "external" / DASK / f"{DASK}.csv").read_bytes()
    train, test = split_rows(repo, "train"), split_rows(repo, "test")
    for part, rows in (("train", train), ("test", test)):
        interim = layout.interim_parts(DASK, part, SNAPSHOT)
        processed = layout.processed_parts(DASK, part, SNAPSHOT)
        assert len(interim) >= 3  # 64KiB blocks of a 250 kB file
        assert len(processed) >= len(interim)  # at most featurize.PART_ROWS rows each
        features = pd.concat([pd.read_parquet(p) for p in processed], ignore_index=True)
        labels = (rows[synth.TARGET] == synth.POSITIVE).astype("int64")
        assert features[synth.TARGET].tolist() == labels.tolist()  # the interim row order
    assert len(train) + len(test) == ROWS
    assert 0.2 < len(test) / ROWS < 0.3  # split.test_size 0.25, up to sampling noise
    # typed from the whole column: numbers, booleans, text with blank cells missing
    assert train["x1"].dtype == "float64" and train["visits"].dtype == "int64"
    assert set(train["member"]) == {True, False}
    assert set(train["note"].dropna()) == {"a", "b"}
    checked, problems = naming_violations(repo)
    assert [p for p in problems if DASK in p] == [] and checked > 20


def test_dask_models_score_like_the_pandas_engines_on_the_same_data(
    repo: Path, pandas_root: Path
) -> None:
    """Both engines train on the same file; their models are scored on the same fresh rows."""
    holdout = synth.frame(HOLDOUT, seed=1)
    y = (holdout[synth.TARGET] == synth.POSITIVE).to_numpy()
    rows = holdout.drop(columns=[synth.TARGET])
    for algo in ALGOS:
        aucs = [
            roc_auc_score(y, load(root, algo, name).predict_proba(rows)[:, 1])
            for root, name in ((repo, DASK), (pandas_root, PANDAS))
        ]
        assert aucs[1] > 0.85, (algo, aucs)  # the data has a clear signal
        assert abs(aucs[0] - aucs[1]) < 0.01, (algo, aucs)


def test_evaluate_metrics_and_plot_data_are_those_of_the_test_rows(repo: Path) -> None:
    layout = Layout(repo)
    test = split_rows(repo, "test")
    y = (test[synth.TARGET] == synth.POSITIVE).to_numpy()
    board = json.loads(layout.leaderboard(DASK).read_text())
    assert sorted(board["ranking"]) == sorted(ALGOS)
    for algo in ALGOS:
        metrics = json.loads(layout.test_metrics(DASK, algo).read_text())
        model = load(repo, algo, DASK)
        proba = model.predict_proba(test, strict_categories=False)[:, 1]
        threshold = model.card.threshold  # chosen by train (threshold: auto), not 0.5
        assert threshold != 0.5 and metrics["threshold"] == threshold
        assert metrics["n_test"] == len(test)
        assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, proba), abs=1e-3)
        predicted = proba >= threshold
        assert metrics["accuracy"] == pytest.approx(np.mean(predicted == y), abs=1e-6)
        assert sorted(metrics["ci95"]) == sorted(METRICS)
        for name in METRICS:  # the whole test split's intervals: narrow, around the value
            low, high = metrics["ci95"][name]["low"], metrics["ci95"][name]["high"]
            assert low <= metrics[name] <= high and high - low < 0.15, (algo, name)
        confusion = pd.read_csv(layout.plot_data("confusion", DASK, algo, SNAPSHOT))
        assert list(confusion.columns) == ["actual", "predicted", "count"]
        assert confusion["count"].sum() == len(test)
        positive = confusion[confusion["predicted"] == synth.POSITIVE]["count"].sum()
        assert positive == predicted.sum()  # counted at the card's threshold
        roc = pd.read_csv(layout.plot_data("roc", DASK, algo, SNAPSHOT))
        assert list(roc.columns) == ["fpr", "tpr", "threshold"] and len(roc) <= 200
        importance = pd.read_csv(layout.plot_data("importance", DASK, algo, SNAPSHOT))
        assert set(importance["feature"]) == set(test.columns) - {synth.TARGET}
    assert layout.plot_data("loss", DASK, "xgb", SNAPSHOT).is_file()


def test_the_model_file_is_the_usual_standalone_artifact(repo: Path) -> None:
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import Pipeline
    from xgboost import XGBClassifier, XGBRFClassifier

    kinds = {"rf": XGBRFClassifier, "xgb": XGBClassifier, "lr": SGDClassifier}
    for algo, kind in kinds.items():
        model = load(repo, algo, DASK)  # read_model: card, check rows, library versions
        assert isinstance(model.pipeline, Pipeline) and type(model.estimator) is kind
        assert model.card.params["dataset"]["engine"] == "dask"
        assert model.card.params["dask"]["estimator"].startswith(("xgboost.dask", "sklearn"))


def test_every_dask_model_file_loads_without_this_repository(repo: Path, tmp_path: Path) -> None:
    """joblib alone (no tabml importable) loads it, and it predicts what the pipeline
    read_model loads does on the same frame."""
    layout = Layout(repo)
    rows = tmp_path / "rows.csv"
    split_rows(repo, "test").head(50).to_csv(rows, index=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    for algo in ("rf", "lr"):  # the estimators the pandas engine does not save
        got = standalone_predictions(
            layout.model(algo, DASK, 1), layout.card(algo, DASK, 1), rows, empty
        )
        assert got["type"] == "sklearn.pipeline.Pipeline" and got["ours_loaded"] == []
        model = load(repo, algo, DASK)
        same = pd.read_csv(rows)[[c.name for c in model.schema]]  # as the helper reads them
        np.testing.assert_allclose(got["proba"], model.pipeline.predict_proba(same), rtol=1e-12)


def test_a_dask_model_is_served_by_the_unchanged_api(repo: Path) -> None:
    from tabml.serving.app import create_app
    from tabml.serving.settings import Settings

    test = split_rows(repo, "test")
    board = json.loads(Layout(repo).leaderboard(DASK).read_text())
    champion = load(repo, board["champion"], DASK)
    rows = test.drop(columns=[synth.TARGET]).head(20)
    records = [
        {k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
        for r in rows.to_dict(orient="records")
    ]
    with TestClient(create_app(Settings(root=repo))) as client:
        assert client.get("/health").json()["status"] == "ok"
        body = client.post("/predict", json={"rows": records, "dataset": DASK}).json()
        assert body["model_id"] == board["champion_model"]
        assert body["threshold"] == champion.card.threshold
        got = [p["probabilities"][synth.POSITIVE] for p in body["predictions"]]
        expected = champion.predict_proba(rows, strict_categories=False)[:, 1]
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
        upload = test.to_csv(index=False).encode()
        answer = client.post(
            "/validate",
            files={"file": ("test.csv", upload, "text/csv")},
            data={"model_id": f"xgb_{DASK}_v1"},
        ).json()
    expected = json.loads(Layout(repo).test_metrics(DASK, "xgb").read_text())
    evaluation = answer["evaluation"]
    assert evaluation["n_labelled"] == expected.pop("n_test") == len(test)
    for name, value in evaluation["metrics"].items():  # exact, but for the binned AUCs
        tolerance = 1e-3 if name in ("roc_auc", "pr_auc") else 2e-6
        assert value == pytest.approx(expected[name], abs=tolerance), name


def test_a_dask_model_predicts_a_file_with_the_batch_cli(repo: Path, tmp_path: Path) -> None:
    rows = synth.frame(200, seed=2).drop(columns=[synth.TARGET])
    source, out = tmp_path / "rows.csv", tmp_path / "predictions.csv"
    rows.to_csv(source, index=False)
    proc = batch_cli(
        "--root", str(repo), "--dataset", DASK, "--input", str(source), "--output", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    board = json.loads(Layout(repo).leaderboard(DASK).read_text())
    expected = load(repo, board["champion"], DASK).predict_proba(pd.read_csv(source))[:, 1]
    got = pd.read_csv(out, float_precision="round_trip")[f"proba_{synth.POSITIVE}"]
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_each_dask_model_is_cross_validated_on_a_sample_of_its_train_split(repo: Path) -> None:
    """The pandas engine's CV rows and folds of the same train split (tabml.cv), predicted
    by the shipped estimator's single-node twin; the threshold chosen from them."""
    from tabml.cv import CvResult, choose_threshold, cv_sample, cv_summary, fold_ids

    layout = Layout(repo)
    y = processed_rows(repo, "train")[synth.TARGET].to_numpy()
    rows = cv_sample(y, CV_ROWS, 42)
    for algo in ALGOS:
        card = load(repo, algo, DASK).card
        oof = pd.read_csv(layout.oof(algo, DASK, 1))
        assert oof.columns.tolist() == ["row", "fold", "y", "proba"]
        assert oof["row"].tolist() == rows.tolist() and len(rows) == CV_ROWS
        assert oof["y"].tolist() == y[rows].tolist()
        assert oof["fold"].tolist() == fold_ids(y[rows], 5, 42).tolist()
        labels, proba = oof["y"].to_numpy(), oof["proba"].to_numpy()
        assert card.threshold == choose_threshold(labels, proba)
        assert card.threshold_rule == "auto: max F1 on out-of-fold predictions"
        assert card.calibration == "none"
        summary = cv_summary(
            CvResult(oof["row"].to_numpy(), oof["fold"].to_numpy(), labels, proba, 5, 42),
            card.threshold,
        )
        assert card.cv == {
            **summary,
            "estimator": f"{dask_train.TWIN[algo]} (the single-node twin of the shipped "
            f"{dask_train.SHIPPED[algo]}, same settings) on a stratified sample of {CV_ROWS} "
            f"of {len(y)} train rows",
        }
        assert card.cv["metrics"]["roc_auc"]["mean"] > 0.85, algo


def test_the_cross_validated_twin_scores_as_the_shipped_model(repo: Path) -> None:
    """CV estimates the model that ships: each twin, trained here on the whole train split,
    scores the test split as the model the workers trained."""
    from stages.train import build_estimator
    from tabml.params import load_params

    params = load_params(repo / "params.yaml")
    train_rows, test_rows = processed_rows(repo, "train"), processed_rows(repo, "test")
    names = [c for c in train_rows.columns if c != synth.TARGET]
    y = train_rows[synth.TARGET].to_numpy()
    sample = dask_train.Sample(
        rows=np.arange(len(y)),
        part=np.zeros(len(y), dtype=np.int64),
        frame=train_rows,
        X=train_rows[names].to_numpy(),
        y=y,
        total=len(y),
    )
    rules = dask_train.StageRules(build_estimator, lambda *args: None)
    X_test, y_test = test_rows[names].to_numpy(), test_rows[synth.TARGET].to_numpy()
    for algo in ALGOS:
        fit = dask_train.local_fit(algo, params, sample, rules)
        twin = fit(np.arange(len(y))[:, np.newaxis], y).estimator
        shipped = load(repo, algo, DASK).estimator
        aucs = [roc_auc_score(y_test, m.predict_proba(X_test)[:, 1]) for m in (twin, shipped)]
        assert abs(aucs[0] - aucs[1]) < 0.01, (algo, aucs)


def test_a_dask_dataset_gets_a_champion_chosen_by_cross_validation(repo: Path) -> None:
    from tabml.cv import SIMPLICITY

    layout = Layout(repo)
    board = json.loads(layout.leaderboard(DASK).read_text())
    assert (board["metric"], board["cv_folds"], board["min_score"]) == ("roc_auc", 5, None)
    for algo in ALGOS:
        card = load(repo, algo, DASK).card
        test = json.loads(layout.test_metrics(DASK, algo).read_text())
        cv = card.cv["metrics"]["roc_auc"]
        entry = board["models"][algo]
        assert entry["model_id"] == f"{algo}_{DASK}_v1"
        assert (entry["cv_mean"], entry["cv_std"]) == (cv["mean"], cv["std"])
        assert (entry["threshold"], entry["threshold_rule"]) == (
            card.threshold,
            card.threshold_rule,
        )
        assert entry["test"] == test["roc_auc"]
        interval = test["ci95"]["roc_auc"]
        assert (entry["test_low"], entry["test_high"]) == (interval["low"], interval["high"])
    means = {algo: board["models"][algo]["cv_mean"] for algo in ALGOS}
    assert board["ranking"] == sorted(ALGOS, key=lambda a: -means[a])
    best, champion = board["ranking"][0], board["champion"]
    assert champion in ALGOS and board["champion_model"] == f"{champion}_{DASK}_v1"
    # one standard error: the champion is that close to the best, and no simpler model is
    margin = board["models"][best]["cv_se"]
    assert means[best] - means[champion] <= margin
    simpler = SIMPLICITY[: SIMPLICITY.index(champion)]
    assert all(means[best] - means[a] > margin for a in simpler)
    assert "CV roc_auc" in board["reason"]
