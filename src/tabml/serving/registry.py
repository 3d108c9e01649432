"""The models a server holds, loaded once from the files the pipeline wrote.

What is served is what ``params.yaml`` declares: one model per dataset and algorithm at
``train.model_version``, at the paths ``tabml.layout.Layout`` gives, each loaded only when
``dvc.lock`` vouches for its md5 (:func:`tabml.artifact.load_vouched`). A request only ever
names a model id, which is looked up in a dict: no request text becomes a path, and nothing a
request sends is unpickled. The champion of a dataset is the leaderboard's ``champion_model``;
a leaderboard that promoted none (``champion: null``, e.g. the ``evaluate.min_score`` gate)
makes a request by dataset a 409 carrying its ``reason``. Each model predicts at its own
card's threshold.

A :class:`Registry` is immutable; reloading builds a new one and swaps it in whole, so a
request sees either the old set of models or the new one, never a mix. Loading never raises:
what cannot be loaded becomes one line in ``problems``, so start-up serves what it can (and
``/health`` says ``degraded``), while ``POST /reload`` swaps only a set without problems.
Sources shown to clients pass through :func:`tabml.secrets.redact`.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.errors import PipelineError
from tabml.layout import ID_FORMAT, Layout, is_name, model_id, parse_model_id
from tabml.secrets import redact
from tabml.serving.errors import InputError, NoChampionError, NotFoundError, UnavailableError
from tabml.serving.settings import Settings

if TYPE_CHECKING:
    from tabml.model import Model
    from tabml.params import Params
    from tabml.serving.scoring import Predictor

log = logging.getLogger("tabml.serving.registry")

RELATIVE = Layout(Path("."))  # paths as shown to clients: relative to the project root
NO_MODEL = "no model is loaded: run the pipeline, then POST /reload (or restart the server)"


@dataclass(frozen=True)
class ServedModel:
    """A loaded model with what the API says about it."""

    model: Model
    predictor: Predictor
    test_metrics: dict[str, Any] | None
    champion: bool

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def summary(self) -> dict[str, Any]:
        card = self.model.card
        return {
            "model_id": card.model_id,
            "algo": card.algo,
            "dataset": card.dataset,
            "version": card.version,
            "snapshot": card.data.snapshot,
            "champion": self.champion,
            "target": card.target,
            "classes": list(card.classes),
            "test_metrics": self.test_metrics,
            "train_metrics": _finite(card.train_metrics),
            "file": str(RELATIVE.model(card.algo, card.dataset, card.version)),
            "card": str(RELATIVE.card(card.algo, card.dataset, card.version)),
            "fast_path": self.predictor.compiled is not None,
        }

    def schema(self) -> dict[str, Any]:
        card = self.model.card
        return {
            "model_id": card.model_id,
            "dataset": card.dataset,
            "target": card.target,
            "classes": list(card.classes),
            "columns": [
                {
                    "name": c.name,
                    "kind": c.kind,
                    "dtype": c.dtype,
                    "categories": list(c.categories) if c.kind == "categorical" else None,
                    "nullable": True,
                }
                for c in card.columns
            ],
            "extra_columns": "ignored",
        }


@dataclass(frozen=True)
class Registry:
    """Everything the server answers from, built at start-up or on reload."""

    models: dict[str, ServedModel] = field(default_factory=dict)
    champions: dict[str, str] = field(default_factory=dict)  # dataset -> model id
    # dataset -> why its leaderboard promoted no model (the evaluate.min_score gate)
    no_champion: dict[str, str] = field(default_factory=dict)
    params: Params | None = None
    datasets: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    example_row: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        """``ok``; ``degraded`` while something params declares is not served (a model, a
        champion); ``unavailable`` while nothing is."""
        if not self.models:
            return "unavailable"
        return "degraded" if self.problems else "ok"

    def get(self, model_id: str) -> ServedModel:
        """The model with this id; the error never repeats text that is not a model id."""
        if not self.models:
            raise UnavailableError(NO_MODEL)
        if parse_model_id(model_id) is None:
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
            raise UnavailableError(NO_MODEL)
        if not is_name(dataset) or (
            self.params is not None and dataset not in self.params.datasets
        ):
            known = ", ".join(self.params.datasets) if self.params else ""
            raise NotFoundError(f"unknown dataset (params.yaml declares: {known})")
        if dataset in self.no_champion:
            raise NoChampionError(
                f"dataset {dataset!r} has no champion: {self.no_champion[dataset]}; give a "
                "model_id to use one of its models anyway"
            )
        if dataset not in self.champions:
            raise NotFoundError(
                f"dataset {dataset!r} has no loaded champion model (no leaderboard, or its "
                "best model is not loaded): give a model_id"
            )
        return self.models[self.champions[dataset]]

    def default_model(self) -> ServedModel | None:
        """The champion of the first dataset in params, else any model: for doc examples."""
        for champion in self.champions.values():
            return self.models[champion]
        return next(iter(self.models.values()), None)


def read_json(path: Path) -> Any:
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


def champion_id(layout: Layout, dataset: str) -> str | None:
    """The leaderboard's champion of ``dataset``, if there is a readable board naming one."""
    return champion(layout, dataset)[0]


def champion(layout: Layout, dataset: str) -> tuple[str | None, str | None]:
    """(champion model id, None), or (None, why there is none): the board promoted no model
    (its reason), or it is missing or unreadable (None, None)."""
    board = read_json(layout.leaderboard(dataset))
    if not isinstance(board, dict) or "champion_model" not in board:
        return None, None
    best = board["champion_model"]
    if best is None:
        reason = board.get("reason")
        return None, reason if isinstance(reason, str) else "the leaderboard promoted no model"
    return (best, None) if parse_model_id(best) is not None else (None, None)


def raw_shape(path: Path, spec: Any) -> tuple[int, int] | None:
    """(rows, columns) of a raw snapshot, read with its dataset's CSV options (ingest keeps
    a CSV source's own format); None if it is not there or not readable."""
    from tabml.csvfile import CsvOptions, csv_shape

    try:
        return csv_shape(path, CsvOptions.of(spec))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def dataset_info(params: Params, root: Path) -> list[dict[str, Any]]:
    """Every dataset in params with its raw CSV's shape and its files per the conventions."""
    version = params.train.model_version
    out = []
    for name, spec in params.datasets.items():
        raw = RELATIVE.raw(name, spec.snapshot)
        shape = raw_shape(root / raw, spec)
        out.append(
            {
                "name": name,
                "source": redact(spec.source),
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


def example_row(model: Model) -> dict[str, Any]:
    """A row that validates, for the API docs: the card's first check row (typical values)."""
    return dict(model.card.check.rows[0])


def load_registry(settings: Settings) -> Registry:
    """Load every model params declares; problems are collected and logged, never raised."""
    from tabml.artifact import load_vouched, lock_md5s
    from tabml.params import load_params
    from tabml.serving.scoring import Predictor

    started = time.perf_counter()
    problems: list[str] = []
    try:
        params = load_params(settings.params_path)
    except PipelineError as exc:
        problem = redact(" ".join(str(exc).split()))
        log.error("cannot load params: %s", problem)
        return Registry(problems=[problem])
    layout = Layout(settings.root)
    lock = lock_md5s(settings.root)
    version = params.train.model_version
    models: dict[str, ServedModel] = {}
    champions: dict[str, str] = {}
    no_champion: dict[str, str] = {}
    for name in params.datasets:
        best, why_none = champion(layout, name)
        if why_none is not None:
            no_champion[name] = redact(why_none)
            log.warning("no champion for %s: %s", name, no_champion[name])
        elif best is None:
            problems.append(
                f"{RELATIVE.leaderboard(name)} is missing or from an older evaluate: no "
                f"champion for {name!r} (rerun the pipeline)"
            )
        for algo in params.train.algos:
            served_id = model_id(algo, name, version)
            try:
                model = load_vouched(settings.root, algo, name, version, lock)
            except PipelineError as exc:  # not vouched for, missing, stale, not a model
                problems.append(" ".join(str(exc).split()))
                continue
            except Exception as exc:  # a damaged file must not stop the others
                problems.append(
                    f"{RELATIVE.model(algo, name, version)} cannot be loaded: {type(exc).__name__}"
                )
                continue
            metrics = read_json(layout.test_metrics(name, algo))
            models[served_id] = ServedModel(
                model=model,
                predictor=Predictor(model, fast_path=settings.fast_path),
                test_metrics=metrics if isinstance(metrics, dict) else None,
                champion=served_id == best,
            )
            if served_id == best:
                champions[name] = served_id
        if best is not None and name not in champions:
            problems.append(f"champion {best!r} of {name!r} is not loaded")
    problems = [redact(p) for p in problems]
    for problem in problems:
        log.warning("%s", problem)
    registry = Registry(
        models=models,
        champions=champions,
        no_champion=no_champion,
        params=params,
        datasets=dataset_info(params, settings.root),
        problems=problems,
    )
    default = registry.default_model()
    if default is not None:
        registry = replace(registry, example_row=example_row(default.model))
    log.info(
        "loaded %d models in %.1f s: %s (fast path: %s)",
        len(models),
        time.perf_counter() - started,
        ", ".join(models) or "none",
        ", ".join(i for i, s in models.items() if s.predictor.compiled) or "none",
    )
    return registry
