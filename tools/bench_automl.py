"""Our pipeline against a 60-second FLAML run on the same split (`make bench-automl`).

Issue 10 asks that, with tuning on, the best model matches or beats a 60-second FLAML run on
the same split. This measures it on the datasets of params.yaml (the demo's credit and churn):

1. Copies the repository (what git tracks or would track: no DVC cache, no outputs, no
   dvc.lock; :func:`tools.bench_scale.copy_repository`) into a temporary directory and runs
   ``dvc repro`` there with tuning off (``tune.algos: []``). From the copy it reads each
   model's CV ROC AUC (its card: train's stratified k-fold on the train split), its test ROC
   AUC (``metrics/test``), the champion (``metrics/leaderboard``), each stage's seconds
   (``TABML_STAGE_STATS``) and the champion's test probabilities (the batch CLI,
   ``python -m tabml.serving.predict``, in the project's .venv).
2. Sets ``tune.algos: [rf, xgb, lr]`` and ``tune.trials`` (``--trials``) and runs ``dvc repro``
   again: tune, train and the stages after them rerun; the split is the same files (their md5
   is checked). The same numbers, plus each tune stage's seconds. Skipped, with a note, while
   dvc.yaml has no tune stage (or with ``--no-tune``).
3. FLAML ``AutoML.fit(time_budget=60, metric="roc_auc", task="classification", seed=...)`` on
   the raw train split the pipeline wrote (``data/interim/<ds>/<ds>-train_interim_<date>.csv``,
   read as every stage reads it), with the input columns the model card lists (categorical
   ones as pandas ``category``, which FLAML's learners take natively) and the target encoded
   1 for ``positive_class`` (:func:`tabml.target.encode_target`); scored on the test split.
   LightGBM with default params on the same frames is a reference point.
4. Compares each pipeline run's champion with FLAML's model on the same test rows: the
   difference of ROC AUC and its paired bootstrap 95% interval (one set of resamples of the
   test rows scores both): "beats" when the interval lies above 0, "behind" when below,
   else "matches" (the test split cannot tell them apart).

FLAML and LightGBM are not project dependencies: run it as
``uv run --no-sync --with "flaml[automl]" python -m tools.bench_automl`` (``make bench-automl``
does). That overlay brings its own xgboost (FLAML pins one), so the project's models are never
loaded here: the batch CLI scores them in the project's .venv.

Load: FLAML's budget is wall time, so on a busy machine it fits fewer trials (and the
pipeline's seconds grow). The notes give nproc, the 1-minute load average at the start,
around FLAML and at the end, this process's own threads, and how many trials FLAML ran.
FLAML and LightGBM run on one thread by default (``--n-jobs``; 0 or less: nproc): on small
data and a shared 2-core machine, OpenMP threads that wait for a busy core cost more than
they give (credit, 30 s budget, load 3.8: 67 trials on 1 thread, 28 on 2), so one thread
gives FLAML its best budget.

    make bench-automl BENCH_ARGS="--markdown automl.md --json automl.json"
    python -m tools.bench_automl --datasets credit --trials 10 --budget 20 --keep
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.cli import disk_error, setup_logging
from tools.bench_scale import (
    BenchError,
    _override,
    aligned,
    child_env,
    copy_repository,
    machine,
    read_stats,
    run_pipeline,
    venv_bin,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench_automl")

RUN_HINT = 'uv run --no-sync --with "flaml[automl]" python -m tools.bench_automl'
NEEDED = ("flaml", "lightgbm")  # the overlay's packages, not the project's
TUNE_ALGOS = ("rf", "xgb", "lr")
METRIC = "roc_auc"
RESAMPLES = 1000  # paired bootstrap of the champion-vs-FLAML difference
DASH = "\u2013"
PLUS_MINUS = "\u00b1"
RUNS = ("off", "tuned")  # the pipeline runs, in order


def missing_automl(find_spec: Callable[[str], Any] = importlib.util.find_spec) -> str | None:
    """The one line to print when FLAML or LightGBM cannot be imported, else None."""
    missing = [name for name in NEEDED if find_spec(name) is None]
    if not missing:
        return None
    return (
        f"{' and '.join(missing)} not installed (not project dependencies, by design): "
        f"run `make bench-automl` or `{RUN_HINT}`"
    )


def own_threads() -> int:
    """Threads of this process now (the OS's count: OpenMP pools of LightGBM included)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return threading.active_count()


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# --- the copy's params ------------------------------------------------------------------------


def edit_params(path: Path, settings: Sequence[str]) -> None:
    """Apply ``KEY=VALUE`` settings (values as YAML, as ``dvc exp run -S``) to params.yaml,
    comments kept."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    params = yaml.load(path.read_text(encoding="utf-8"))
    for setting in settings:
        _override(params, setting)
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(params, out)


def keep_datasets(path: Path, names: Sequence[str]) -> None:
    """Drop every dataset of params.yaml but ``names`` (an unknown name is an error)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    params = yaml.load(path.read_text(encoding="utf-8"))
    unknown = [name for name in names if name not in params["datasets"]]
    if unknown:
        raise BenchError(
            f"--datasets {' '.join(unknown)}: params.yaml declares {', '.join(params['datasets'])}"
        )
    for name in list(params["datasets"]):
        if name not in names:
            del params["datasets"][name]
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(params, out)


def read_params(repo: Path) -> dict[str, Any]:
    """params.yaml of the copy as plain data (YAML 1.2, as DVC and the stages read it)."""
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load((repo / "params.yaml").read_text(encoding="utf-8"))


def tune_wired(repo: Path) -> bool:
    """Whether dvc.yaml declares the tune stage (issue 10 adds it before train)."""
    from ruamel.yaml import YAML

    pipeline = YAML(typ="safe", pure=True).load((repo / "dvc.yaml").read_text(encoding="utf-8"))
    return "tune" in (pipeline.get("stages") or {})


# --- what a pipeline run produced -----------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot read {path}: {exc}") from None


def pipeline_result(repo: Path, dataset: str, stats: Mapping[str, Mapping[str, Any]]) -> dict:
    """Each model's CV and test ROC AUC, the champion, and the seconds of its train and tune
    stages, from the copy's leaderboard, cards, test metrics and stage stats."""
    from tabml.layout import Layout, parse_model_id
    from tabml.tuning import tune_metrics_file

    layout = Layout(repo)
    board = _read_json(layout.leaderboard(dataset))
    models: dict[str, dict[str, Any]] = {}
    for algo, entry in board["models"].items():
        parsed = parse_model_id(entry["model_id"])
        if parsed is None:
            raise BenchError(f"{layout.leaderboard(dataset)}: bad model id {entry['model_id']!r}")
        card = _read_json(layout.card(*parsed))
        cv = ((card.get("cv") or {}).get("metrics") or {}).get(METRIC) or {}
        test = _read_json(layout.test_metrics(dataset, algo))
        tune_file = tune_metrics_file(layout, dataset, algo)
        tune = _read_json(tune_file) if tune_file.exists() else {}
        train_s = (stats.get(f"train@{dataset}-{algo}") or {}).get("seconds")
        tune_s = (stats.get(f"tune@{dataset}-{algo}") or {}).get("seconds")
        models[algo] = {
            "model_id": entry["model_id"],
            "cv_mean": cv.get("mean"),
            "cv_std": cv.get("std"),
            "test": test.get(METRIC),
            "train_seconds": train_s,
            "tune_seconds": tune_s if tune.get("trials") else None,
            "tune": {k: tune.get(k) for k in ("trials", "seconds", "gain", "params")}
            if tune.get("trials")
            else None,
            "columns": card.get("columns") or [],
        }
    ranking = list(board.get("ranking") or models)
    champion = board.get("champion")
    return {
        "leaderboard_metric": board.get("metric"),
        "ranking": ranking,
        "champion": champion,
        "reason": board.get("reason"),
        # no champion (a min_score gate): compare the best-ranked model anyway, and say so
        "compared": champion or (ranking[0] if ranking else None),
        "models": models,
    }


def predict_proba(repo: Path, model_id: str, rows: Path, positive: str, out: Path) -> list[float]:
    """The positive class's probability of each row of ``rows``, from the batch CLI in the
    project's .venv (the model is never loaded in this process: see the module doc)."""
    import pandas as pd

    from tabml.target import label_key

    cmd = [
        str(venv_bin() / "python"),
        "-m",
        "tabml.serving.predict",
        "--model",
        model_id,
        "--input",
        str(rows),
        "--output",
        str(out),
        "--root",
        str(repo),
    ]
    proc = subprocess.run(
        cmd, cwd=repo, env=child_env(), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchError(f"the batch CLI could not score {model_id}: {last}")
    frame = pd.read_csv(out)
    wanted = label_key(str(positive))
    columns = [c for c in frame.columns if c.startswith("proba_") and label_key(c[6:]) == wanted]
    if len(columns) != 1:
        raise BenchError(f"{out}: no proba_{positive} column among {list(frame.columns)}")
    return frame[columns[0]].astype(float).tolist()


# --- FLAML and LightGBM -----------------------------------------------------------------------


def frames(
    repo: Path, dataset: str, spec: Mapping[str, Any], columns: Sequence[Mapping[str, Any]]
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    """(X_train, y_train, X_test, y_test) from the copy's interim split, read as the stages
    read it; the card's input columns, categorical ones as ``category`` with the train
    split's levels (a level seen only in test is missing, as for an unseen category)."""
    import pandas as pd

    from tabml.csvfile import CsvOptions, read_dataset
    from tabml.layout import Layout
    from tabml.schema import as_text
    from tabml.target import encode_target

    layout = Layout(repo)
    options = CsvOptions.of(spec)
    train = read_dataset(layout.interim(dataset, "train", spec["snapshot"]), options)
    test = read_dataset(layout.interim(dataset, "test", spec["snapshot"]), options)
    names = [c["name"] for c in columns] or [c for c in train.columns if c != spec["target"]]
    kinds = {c["name"]: c["kind"] for c in columns}
    X_train, X_test = train[names].copy(), test[names].copy()
    for name in names:
        if kinds.get(name) == "categorical" or X_train[name].dtype.kind not in "biuf":
            levels = sorted(as_text(X_train[name]).dropna().unique().tolist())
            dtype = pd.CategoricalDtype(levels)
            X_train[name] = as_text(X_train[name]).astype(dtype)
            X_test[name] = as_text(X_test[name]).astype(dtype)
        else:
            X_train[name] = pd.to_numeric(X_train[name], errors="coerce").astype("float64")
            X_test[name] = pd.to_numeric(X_test[name], errors="coerce").astype("float64")
    positive = str(spec["positive_class"])
    y_train = encode_target(train[spec["target"]], positive)
    y_test = encode_target(test[spec["target"]], positive)
    return X_train, y_train, X_test, y_test


def trials_in_log(path: Path) -> Counter[str]:
    """Trials per learner in a FLAML log written with ``log_type="all"``."""
    counts: Counter[str] = Counter()
    if not path.exists():
        return counts
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if "record_id" in record:
            counts[str(record.get("learner"))] += 1
    return counts


def run_flaml(
    X: pd.DataFrame,
    y: pd.Series,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    *,
    budget: float,
    seed: int,
    n_jobs: int,
    log_file: Path,
) -> dict[str, Any]:
    """FLAML AutoML with a wall-time budget, and its best model's test ROC AUC."""
    from flaml import AutoML
    from sklearn.metrics import roc_auc_score

    logging.getLogger("flaml").setLevel(logging.WARNING)  # one INFO line per search hint
    automl = AutoML()
    start = time.perf_counter()
    automl.fit(
        X,
        y,
        task="classification",
        metric=METRIC,
        time_budget=budget,
        seed=seed,
        n_jobs=n_jobs,
        verbose=0,
        log_file_name=str(log_file),
        log_type="all",
    )
    seconds = time.perf_counter() - start
    proba = automl.predict_proba(X_test)[:, 1]
    trials = trials_in_log(log_file)
    state = getattr(automl, "_state", None)
    return {
        "best_estimator": automl.best_estimator,
        "best_config": automl.best_config,
        "validation": round(1 - automl.best_loss, 6),  # roc_auc's loss is 1 - AUC
        "eval_method": getattr(state, "eval_method", None),
        "trials": sum(trials.values()),
        "trials_per_learner": dict(trials.most_common()),
        "seconds": round(seconds, 1),
        "test": round(float(roc_auc_score(y_test, proba)), 6),
        "proba": proba.tolist(),
    }


def run_lightgbm(
    X: pd.DataFrame,
    y: pd.Series,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    *,
    seed: int,
    n_jobs: int,
) -> dict[str, Any]:
    """LightGBM with its default params (seeded, quiet): a reference point."""
    from lightgbm import LGBMClassifier
    from sklearn.metrics import roc_auc_score

    model = LGBMClassifier(random_state=seed, n_jobs=n_jobs, verbose=-1)
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    proba = model.predict_proba(X_test)[:, 1]
    return {"seconds": round(seconds, 2), "test": round(float(roc_auc_score(y_test, proba)), 6)}


# --- the comparison ---------------------------------------------------------------------------


def paired_difference(
    y: Sequence[int] | np.ndarray,
    ours: Sequence[float] | np.ndarray,
    theirs: Sequence[float] | np.ndarray,
    *,
    resamples: int = RESAMPLES,
    seed: int = 42,
) -> dict[str, float]:
    """ROC AUC of ``ours`` minus that of ``theirs`` on the same rows, and the 95% percentile
    interval of that difference over bootstrap resamples of the rows (both models scored on
    each resample: the pairing cancels what the rows have in common). The AUC of a resample
    is :func:`tabml.bootstrap.weighted_metrics`' (evaluate's bootstrap arithmetic, checked
    against scikit-learn), a few times faster than ``roc_auc_score`` on the indexed rows."""
    import numpy as np

    from tabml.bootstrap import percentile_interval, weighted_metrics

    labels, a, b = np.asarray(y), np.asarray(ours, float), np.asarray(theirs, float)

    def difference(weights: np.ndarray | None = None) -> float:
        auc_a = weighted_metrics(labels, a, 0.5, sample_weight=weights)[METRIC]
        return auc_a - weighted_metrics(labels, b, 0.5, sample_weight=weights)[METRIC]

    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    for i in range(resamples):  # a resample as row multiplicities: nan when one class only
        values[i] = difference(
            np.bincount(rng.integers(0, labels.size, labels.size), minlength=labels.size)
        )
    low, high = percentile_interval(values, 0.95)
    return {"diff": round(difference(), 6), "low": round(low, 6), "high": round(high, 6)}


def verdict(low: float, high: float) -> str:
    """beats / behind / matches from the difference's 95% interval (ours minus FLAML's)."""
    if math.isnan(low) or math.isnan(high):
        return "undecided (too few resamples with both classes)"
    if low > 0:
        return "beats"
    if high < 0:
        return "behind"
    return "matches (the interval holds 0)"


# --- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    dataset: str
    run: str
    model: str
    cv: str  # "mean ± std" of the pipeline's CV, or FLAML's own validation score
    test: float | None
    seconds: float | None  # search + fit


HEADER = ("dataset", "run", "model", "CV ROC AUC", "test ROC AUC", "search+fit s")
LEFT = {0, 1, 2}


def run_label(run: str, trials: int | None) -> str:
    return "pipeline, tuning off" if run == "off" else f"pipeline, tuned ({trials} trials)"


def _num(value: float | None, digits: int) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def table_rows(summary: Mapping[str, Any]) -> list[Row]:
    """One row per pipeline model and run (ranking order, champion marked ``*``), then
    FLAML's best model and LightGBM's defaults, for each dataset."""
    rows: list[Row] = []
    trials = summary["settings"]["trials"]
    for dataset in summary["datasets"]:
        for run in RUNS:
            found = (summary["runs"].get(run) or {}).get(dataset)
            if not found:
                continue
            for algo in found["ranking"]:
                m = found["models"][algo]
                cv = (
                    DASH
                    if m["cv_mean"] is None
                    else f"{m['cv_mean']:.4f} {PLUS_MINUS} {m['cv_std'] or 0:.4f}"
                )
                parts = [s for s in (m.get("tune_seconds"), m.get("train_seconds")) if s]
                rows.append(
                    Row(
                        dataset=dataset,
                        run=run_label(run, trials),
                        model=algo + ("*" if algo == found["champion"] else ""),
                        cv=cv,
                        test=m["test"],
                        seconds=sum(parts) if parts else None,
                    )
                )
        flaml = summary["flaml"][dataset]
        rows.append(
            Row(
                dataset=dataset,
                run=f"FLAML, {summary['settings']['budget']:g} s budget",
                model=f"{flaml['best_estimator']} (best of {flaml['trials']} trials)",
                cv=f"{flaml['validation']:.4f} ({flaml['eval_method'] or 'own validation'})",
                test=flaml["test"],
                seconds=flaml["seconds"],
            )
        )
        lgbm = summary["lightgbm"][dataset]
        rows.append(Row(dataset, "LightGBM, defaults", "lgbm", DASH, lgbm["test"], lgbm["seconds"]))
    return rows


def _cells(row: Row) -> tuple[str, ...]:
    seconds = _num(row.seconds, 2 if row.seconds is not None and row.seconds < 1 else 1)
    return (row.dataset, row.run, row.model, row.cv, _num(row.test, 4), seconds)


def text_table(rows: Sequence[Row]) -> str:
    """The table for a terminal: columns aligned, numbers right-aligned."""
    return aligned([HEADER, *(_cells(row) for row in rows)], left=LEFT)


def markdown_table(rows: Sequence[Row]) -> str:
    """The same table as GitHub markdown; a champion's row in bold."""
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" if i in LEFT else "---:" for i in range(len(HEADER))) + "|",
    ]
    for row in rows:
        cells = [c.replace("|", "\\|") for c in _cells(row)]
        if row.model.endswith("*"):
            cells = [f"**{c}**" if c != DASH else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparison_lines(summary: Mapping[str, Any]) -> list[str]:
    """Per dataset and pipeline run: the compared model against FLAML, and the verdict."""
    lines = []
    trials = summary["settings"]["trials"]
    for dataset in summary["datasets"]:
        flaml = summary["flaml"][dataset]
        for run in RUNS:
            found = (summary["runs"].get(run) or {}).get(dataset)
            if not found or not found.get("versus_flaml"):
                continue
            vs = found["versus_flaml"]
            algo = found["compared"]
            who = f"champion {algo}" if found["champion"] else f"best-ranked {algo} (no champion)"
            ours = found["models"][algo]["test"]
            lines.append(
                f"{dataset}, {run_label(run, trials)}: {who} {ours:.4f} vs "
                f"FLAML {flaml['test']:.4f} on {summary['test_rows'][dataset]} test rows: "
                f"difference {vs['diff']:+.4f}, paired bootstrap 95% interval "
                f"[{vs['low']:+.4f}, {vs['high']:+.4f}]: {vs['verdict']}"
            )
    return lines


def tune_lines(summary: Mapping[str, Any]) -> list[str]:
    """Per dataset of the tuned run: each search's CV gain over params.yaml's values, its
    trials, and its tune stage's seconds."""
    lines = []
    for dataset in summary["datasets"]:
        found = (summary["runs"].get("tuned") or {}).get(dataset)
        if not found:
            continue
        parts = []
        for algo in found["ranking"]:
            m = found["models"][algo]
            tune = m.get("tune")
            if tune:
                parts.append(
                    f"{algo} {tune['gain']:+.4f} ({tune['trials']} trials, "
                    f"{_num(m.get('tune_seconds'), 1)} s)"
                )
        if parts:
            lines.append(
                f"{dataset}, tune stages: CV ROC AUC gain over params.yaml's values: "
                + ", ".join(parts)
            )
    return lines


def load_note(m: Mapping[str, Any]) -> str:
    """The machine and how busy it was: FLAML's budget is wall time, so load costs it trials."""
    load = m["load"]
    text = (
        f"machine: nproc {m['nproc']}, {m['memory_gb']} GB RAM, {m['cpu'] or 'cpu unknown'}, "
        f"python {m['python']}; 1-minute load average {load['start']:.2f} at start, "
        f"{load['before_flaml']:.2f} before FLAML, {load['after_flaml']:.2f} after it, "
        f"{load['end']:.2f} at the end; this process ran {m['threads']['after_flaml']} threads "
        f"after FLAML (FLAML and LightGBM n_jobs {m['n_jobs']}; the pipeline's models "
        "train.<algo>.n_jobs)"
    )
    # This run keeps at most nproc threads busy (the pipeline's n_jobs, FLAML's): a load
    # above 1 before it began, or above nproc + 1 during it, is other processes' work.
    if load["start"] > 1 or max(load.values()) > m["nproc"] + 1:
        text += (
            f": other processes shared the {m['nproc']} cores, so FLAML's budget ran fewer "
            "trials than on an idle machine and every time is inflated"
        )
    return text


def describe(summary: Mapping[str, Any]) -> str:
    """The lines under the table: the verdicts, what each number is, and on what."""
    s = summary["settings"]
    walls = summary["dvc_repro_seconds"]
    wall_text = ", ".join(
        f"{run_label(run, s['trials'])} {walls[run]:.1f} s" for run in RUNS if run in walls
    )
    lines = [
        *comparison_lines(summary),
        *tune_lines(summary),
        "",
        "* champion (metrics/leaderboard: best CV mean; a simpler model within one standard "
        "error wins). CV ROC AUC: the pipeline's stratified k-fold mean \u00b1 std on the "
        "train split (model card); FLAML's: its own validation of its best config (holdout or "
        "cv, as it chose). Test ROC AUC: every model on the same test split "
        "(data/interim/<ds>/<ds>-test_interim_<date>.csv, md5 checked between runs).",
        f"search+fit s: the pipeline's train stage (k-fold CV and the final fit; plus the "
        "tune stage, tuned) process seconds; "
        f"FLAML's fit wall time (search and final refit); LightGBM's fit. dvc repro wall: "
        f"{wall_text or DASH}.",
        f"FLAML {s['flaml_version']} (time_budget {s['budget']:g} s, metric roc_auc, seed "
        f"{s['seed']}, estimators as FLAML picks), LightGBM {s['lightgbm_version']} defaults "
        f"(seed {s['seed']}); inputs: the model card's columns, categorical ones as pandas "
        "category. Verdict: paired bootstrap of the test ROC AUC difference, "
        f"{RESAMPLES} resamples: beats / behind when the 95% interval excludes 0.",
        load_note(summary["machine"]) + ".",
    ]
    if summary.get("tune_note"):
        lines.append(summary["tune_note"])
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------


def _pipeline(repo: Path, base: Path, run: str, datasets: Sequence[str], params: dict) -> dict:
    """dvc repro in the copy; each dataset's result with its compared model's test proba."""
    from tabml.layout import Layout

    stats_path = base / f"stats-{run}.jsonl"
    stats_path.unlink(missing_ok=True)
    wall, _ = run_pipeline(repo, stats_path)  # each stage appends its seconds there
    stats = read_stats(stats_path)
    layout = Layout(repo)
    results = {"_wall": round(wall, 1)}
    for dataset in datasets:
        spec = params["datasets"][dataset]
        found = pipeline_result(repo, dataset, stats)
        model_id = found["models"][found["compared"]]["model_id"]
        test_csv = layout.interim(dataset, "test", spec["snapshot"])
        found["proba"] = predict_proba(
            repo, model_id, test_csv, str(spec["positive_class"]), base / f"{run}-{dataset}.csv"
        )
        found["split_md5"] = {
            part: md5(layout.interim(dataset, part, spec["snapshot"])) for part in ("train", "test")
        }
        results[dataset] = found
    return results


def bench(
    *,
    datasets: Sequence[str] | None,
    trials: int,
    budget: float,
    seed: int,
    n_jobs: int,
    tune: bool,
    settings: Sequence[str] = (),
    keep: bool = False,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Run the whole comparison (see the module doc); the numbers as one JSON-able dict."""
    import flaml
    import lightgbm

    load = {"start": load1()}
    base = Path(tempfile.mkdtemp(prefix="bench-automl-", dir=workdir))
    repo = base / "repo"
    repo.mkdir()
    ok = False
    try:
        copy_repository(REPO, repo)
        params_path = repo / "params.yaml"
        if datasets:
            keep_datasets(params_path, datasets)
        wired = tune_wired(repo)
        edit_params(params_path, [*settings, *(["tune.algos=[]"] if wired else [])])
        params = read_params(repo)
        names = list(params["datasets"])
        log.info("copy in %s; datasets %s; dvc repro with tuning off", repo, ", ".join(names))
        runs: dict[str, dict] = {"off": _pipeline(repo, base, "off", names, params)}

        summary_flaml, summary_lgbm, test_rows, y_tests = {}, {}, {}, {}
        load["before_flaml"] = load1()
        for dataset in names:
            spec = params["datasets"][dataset]
            columns = runs["off"][dataset]["models"][runs["off"][dataset]["compared"]]["columns"]
            X, y, X_test, y_test = frames(repo, dataset, spec, columns)
            test_rows[dataset], y_tests[dataset] = len(y_test), y_test.to_numpy()
            log.info(
                "FLAML on %s: %d train rows, %d columns, %g s budget",
                dataset,
                len(y),
                X.shape[1],
                budget,
            )
            summary_flaml[dataset] = run_flaml(
                X,
                y,
                X_test,
                y_test,
                budget=budget,
                seed=seed,
                n_jobs=n_jobs,
                log_file=base / f"flaml-{dataset}.log",
            )
            log.info(
                "FLAML on %s: %s, %d trials, test ROC AUC %.4f",
                dataset,
                summary_flaml[dataset]["best_estimator"],
                summary_flaml[dataset]["trials"],
                summary_flaml[dataset]["test"],
            )
            summary_lgbm[dataset] = run_lightgbm(X, y, X_test, y_test, seed=seed, n_jobs=n_jobs)
        load["after_flaml"] = load1()
        threads = {"after_flaml": own_threads()}

        tune_note = None
        if not tune:
            tune_note = "Tuning on: not run (--no-tune)."
        elif not wired:
            tune_note = (
                "Tuning on: SKIPPED, dvc.yaml has no tune stage yet (issue 10 wires "
                "tune@<dataset>-<algo> before train): only tuning off was measured."
            )
        else:
            edit_params(
                params_path, [f"tune.algos=[{', '.join(TUNE_ALGOS)}]", f"tune.trials={trials}"]
            )
            log.info("dvc repro with tune.algos [%s], %d trials", ", ".join(TUNE_ALGOS), trials)
            runs["tuned"] = _pipeline(repo, base, "tuned", names, params)
            for dataset in names:
                if runs["tuned"][dataset]["split_md5"] != runs["off"][dataset]["split_md5"]:
                    raise BenchError(f"the {dataset} split changed between the two runs in {repo}")
        load["end"] = load1()

        walls = {run: found.pop("_wall") for run, found in runs.items()}
        for found in runs.values():
            for dataset in names:
                result = found[dataset]
                proba = result.pop("proba")
                vs = paired_difference(
                    y_tests[dataset], proba, summary_flaml[dataset]["proba"], seed=seed
                )
                result["versus_flaml"] = vs | {"verdict": verdict(vs["low"], vs["high"])}
                for m in result["models"].values():
                    m.pop("columns", None)
        for entry in summary_flaml.values():
            entry.pop("proba")
        ok = True
        return {
            "datasets": names,
            "settings": {
                "trials": trials if "tuned" in runs else None,
                "budget": budget,
                "seed": seed,
                "set": list(settings),
                "flaml_version": flaml.__version__,
                "lightgbm_version": lightgbm.__version__,
            },
            "machine": machine() | {"load": load, "threads": threads, "n_jobs": n_jobs},
            "dvc_repro_seconds": walls,
            "test_rows": test_rows,
            "runs": runs,
            "flaml": summary_flaml,
            "lightgbm": summary_lgbm,
            "tune_note": tune_note,
        }
    finally:
        if keep or not ok:
            log.info("kept the benchmark copy: %s", base)
        else:
            shutil.rmtree(base, ignore_errors=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.bench_automl", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--datasets", nargs="+", help="only these datasets (default: all of params.yaml)"
    )
    p.add_argument("--trials", type=int, default=30, help="tune.trials (default %(default)s)")
    p.add_argument(
        "--budget", type=float, default=60.0, help="FLAML time_budget s (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=42, help="FLAML, LightGBM and bootstrap seed")
    p.add_argument(
        "--n-jobs",
        type=int,
        default=1,
        help="FLAML and LightGBM threads (default %(default)s: see the module doc)",
    )
    p.add_argument("--no-tune", action="store_true", help="skip the tuned pipeline run")
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a param of the copy for both runs, e.g. train.rf.n_estimators=50",
    )
    p.add_argument("--json", type=Path, help="write the numbers here as JSON")
    p.add_argument("--markdown", type=Path, help="write the table here as markdown")
    p.add_argument("--keep", action="store_true", help="keep the temporary copy")
    p.add_argument("--workdir", type=Path, help="where to make the temporary copy")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.verbose)
    missing = missing_automl()
    if missing is not None:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    if args.trials < 1 or args.budget <= 0:
        print("error: --trials must be at least 1 and --budget above 0", file=sys.stderr)
        return 2
    if args.workdir is not None and not args.workdir.is_dir():
        print(f"error: --workdir {args.workdir} is not a directory", file=sys.stderr)
        return 2
    n_jobs = args.n_jobs if args.n_jobs > 0 else machine()["nproc"] or 1
    try:
        summary = bench(
            datasets=args.datasets,
            trials=args.trials,
            budget=args.budget,
            seed=args.seed,
            n_jobs=n_jobs,
            tune=not args.no_tune,
            settings=args.settings,
            keep=args.keep,
            workdir=args.workdir,
        )
    except BenchError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full or read-only disk under --workdir, most likely
        message = disk_error(exc, args.workdir or Path(tempfile.gettempdir()))
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    rows = table_rows(summary)
    notes = describe(summary)
    print(text_table(rows))
    print()
    print(notes)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(markdown_table(rows) + "\n\n" + notes + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
