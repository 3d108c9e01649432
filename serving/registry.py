"""The models a server holds, loaded once from the files the pipeline wrote.

What is served is what ``params.yaml`` declares: one model per dataset and algorithm at
``train.model_version``, at the path ``stages.common.Layout`` gives. A request only ever names
a model id, which is looked up in a dict: no request text becomes a path, and nothing a
request sends is unpickled. The champion of a dataset is the leaderboard's ``best_model``.

A :class:`Registry` is immutable; reloading builds a new one and swaps it in whole, so a
request sees either the old set of models or the new one, never a mix.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serving.errors import InputError, NotFoundError, UnavailableError
from serving.settings import Settings
from stages.common import MODEL_ID_PATTERN, Layout
from stages.errors import PipelineError
from stages.params import NAME_RE, Params, load_params

if TYPE_CHECKING:
    from serving.scoring import Predictor
    from stages.model import TrainedModel

log = logging.getLogger("serving.registry")

# The model file name rule of stages.common, used with fullmatch (no trailing newline).
MODEL_ID_RE = re.compile(MODEL_ID_PATTERN)
ID_FORMAT = "<algo>_<dataset>_v<N>, e.g. xgb_credit_v1"
RELATIVE = Layout(Path("."))  # paths as shown to clients: relative to the repository root


def is_model_id(text: object) -> bool:
    return isinstance(text, str) and MODEL_ID_RE.fullmatch(text) is not None


@dataclass(frozen=True)
class ServedModel:
    """A loaded model with what the API says about it."""

    model: TrainedModel
    predictor: Predictor
    file: str
    test_metrics: dict[str, Any] | None
    champion: bool

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def summary(self) -> dict[str, Any]:
        m = self.model
        return {
            "model_id": m.model_id,
            "algo": m.algo,
            "dataset": m.dataset,
            "version": m.version,
            "snapshot": m.snapshot,
            "champion": self.champion,
            "target": m.target,
            "classes": list(m.classes),
            "test_metrics": self.test_metrics,
            "train_metrics": _finite(m.train_metrics),
            "file": self.file,
            "fast_path": self.predictor.compiled is not None,
        }

    def schema(self) -> dict[str, Any]:
        m = self.model
        return {
            "model_id": m.model_id,
            "dataset": m.dataset,
            "target": m.target,
            "classes": list(m.classes),
            "columns": [
                {
                    "name": c.name,
                    "kind": c.kind,
                    "dtype": c.dtype,
                    "categories": list(c.categories) if c.kind == "categorical" else None,
                    "nullable": True,
                }
                for c in m.schema
            ],
            "extra_columns": "ignored",
        }


@dataclass(frozen=True)
class Registry:
    """Everything the server answers from, built at start-up or on reload."""

    models: dict[str, ServedModel] = field(default_factory=dict)
    champions: dict[str, str] = field(default_factory=dict)  # dataset -> model id
    params: Params | None = None
    datasets: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    threshold: float = 0.5
    example_row: dict[str, Any] | None = None
    loaded_at: float = field(default_factory=time.time)

    def get(self, model_id: str) -> ServedModel:
        """The model with this id; the error never repeats text that is not a model id."""
        if not self.models:
            raise UnavailableError("no model is loaded: run the pipeline, then POST /reload")
        if not is_model_id(model_id):
            raise NotFoundError(
                f"unknown model id: ids look like {ID_FORMAT}; GET /models lists them"
            )
        if model_id not in self.models:
            raise NotFoundError(f"unknown model {model_id!r}: GET /models lists the loaded ones")
        return self.models[model_id]

    def resolve(self, model_id: str | None, dataset: str | None) -> ServedModel:
        """``model_id`` wins; otherwise the champion of ``dataset``."""
        if model_id:
            return self.get(model_id)
        if not dataset:
            raise InputError("give a model_id, or a dataset to use its champion model")
        if not self.models:
            raise UnavailableError("no model is loaded: run the pipeline, then POST /reload")
        if not (isinstance(dataset, str) and NAME_RE.fullmatch(dataset)) or (
            self.params is not None and dataset not in self.params.datasets
        ):
            known = ", ".join(self.params.datasets) if self.params else ""
            raise NotFoundError(f"unknown dataset (params.yaml declares: {known})")
        if dataset not in self.champions:
            raise NotFoundError(
                f"dataset {dataset!r} has no loaded champion model (no leaderboard, or its "
                "best model is not loaded): give a model_id"
            )
        return self.models[self.champions[dataset]]

    def default_model(self) -> ServedModel | None:
        """The champion of the first dataset in params, else any model: for doc examples."""
        for model_id in self.champions.values():
            return self.models[model_id]
        return next(iter(self.models.values()), None)


def _read_json(path: Path) -> Any:
    """A pipeline JSON, or None; NaN and infinities (json.dumps writes them) become null,
    since strict JSON responses cannot carry them."""
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_constant=lambda _: None)
    except (OSError, ValueError):
        return None


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()
    }


def load_model(path: Path, expected_id: str) -> TrainedModel:
    """Unpickle a model file the pipeline wrote (never one a client sent) and check it."""
    from stages.common import read_pickle
    from stages.model import TrainedModel

    model = read_pickle(path)
    if not isinstance(model, TrainedModel):
        raise PipelineError(f"{path.name} does not hold a stages.model.TrainedModel")
    if model.model_id != expected_id:
        raise PipelineError(f"{path.name} holds model {model.model_id!r}, not {expected_id!r}")
    return model


def csv_shape(path: Path, sep: str = ",") -> tuple[int, int] | None:
    """(rows, columns) of a CSV, quoting-aware, without pandas; None if it is not there."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=sep)
            header = next(reader, None)
            if header is None:
                return 0, 0
            return sum(1 for _ in reader), len(header)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def dataset_info(params: Params, root: Path) -> list[dict[str, Any]]:
    """Every dataset in params with its raw CSV's shape and its files per the conventions."""
    version = params.train.model_version
    out = []
    for name, spec in params.datasets.items():
        raw = RELATIVE.raw(name, spec.snapshot)
        shape = csv_shape(root / raw, spec.sep)
        out.append(
            {
                "name": name,
                "source": spec.source,
                "snapshot": spec.snapshot,
                "target": spec.target,
                "positive_class": spec.positive_class,
                "drop_columns": list(spec.drop_columns),
                "raw_rows": shape[0] if shape else None,
                "raw_columns": shape[1] if shape else None,
                "files": {
                    "raw": str(raw),
                    "interim_train": str(RELATIVE.interim(name, "train", spec.snapshot)),
                    "interim_test": str(RELATIVE.interim(name, "test", spec.snapshot)),
                    "processed_dir": str(RELATIVE.processed_dir(name)),
                    "models": {
                        algo: str(RELATIVE.model(algo, name, version))
                        for algo in params.train.algos
                    },
                },
            }
        )
    return out


def example_row(model: TrainedModel, root: Path) -> dict[str, Any]:
    """A row that validates, for the API docs: the raw CSV's first row, or one from the schema."""
    from serving.scoring import batch_from_records

    raw = Layout(root).raw(model.dataset, model.snapshot)
    if raw.exists():
        import pandas as pd

        sep = model.params.get("dataset", {}).get("sep", ",")
        try:
            first = pd.read_csv(raw, sep=sep, nrows=1, low_memory=False).iloc[0]
            row = {}
            for spec in model.schema:
                value = first[spec.name]
                if pd.isna(value):
                    value = None
                elif hasattr(value, "item"):  # numpy scalar -> plain Python for JSON
                    value = value.item()
                row[spec.name] = value
            batch_from_records([row], model.schema)
            return row
        except Exception as exc:  # examples must work: fall back to a row built from the schema
            log.info("no example row from %s (%s); building one", raw.name, exc)
    return {
        c.name: (c.categories[0] if c.categories else None) if c.kind == "categorical" else 0
        for c in model.schema
    }


def load_registry(settings: Settings) -> Registry:
    """Load every model params declares; problems are collected, never raised."""
    from serving.scoring import Predictor

    started = time.perf_counter()
    problems: list[str] = []
    try:
        params = load_params(settings.params_path)
    except PipelineError as exc:
        log.error("cannot load params: %s", exc)
        return Registry(problems=[str(exc)])
    layout = Layout(settings.root)
    version = params.train.model_version
    models: dict[str, ServedModel] = {}
    champions: dict[str, str] = {}
    for name in params.datasets:
        board = _read_json(layout.leaderboard(name)) or {}
        best = board.get("best_model") if isinstance(board, dict) else None
        if best is None:
            problems.append(f"{RELATIVE.leaderboard(name)} is missing: no champion for {name!r}")
        for algo in params.train.algos:
            path = layout.model(algo, name, version)
            model_id = f"{algo}_{name}_v{version}"
            rel = str(RELATIVE.model(algo, name, version))
            if not path.exists():
                problems.append(f"{rel} is missing: run the pipeline (make repro)")
                continue
            try:
                model = load_model(path, model_id)
            except Exception as exc:  # a corrupt or foreign file must not stop the others
                log.error("cannot load %s: %s", rel, exc)
                problems.append(f"{rel} cannot be loaded: {type(exc).__name__}")
                continue
            metrics = _read_json(layout.test_metrics(name, algo))
            models[model_id] = ServedModel(
                model=model,
                predictor=Predictor(model, fast_path=settings.fast_path),
                file=rel,
                test_metrics=metrics if isinstance(metrics, dict) else None,
                champion=model_id == best,
            )
            if model_id == best:
                champions[name] = model_id
        if best is not None and name not in champions:
            problems.append(f"champion {best!r} of {name!r} is not loaded")
    for problem in problems:
        log.warning("%s", problem)
    registry = Registry(
        models=models,
        champions=champions,
        params=params,
        datasets=dataset_info(params, settings.root),
        problems=problems,
        threshold=params.evaluate.threshold,
    )
    default = registry.default_model()
    if default is not None:
        registry = replace(registry, example_row=example_row(default.model, settings.root))
    log.info(
        "loaded %d models in %.1f s: %s (fast path: %s)",
        len(models),
        time.perf_counter() - started,
        ", ".join(models) or "none",
        ", ".join(i for i, s in models.items() if s.predictor.compiled) or "none",
    )
    return registry
