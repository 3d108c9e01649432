"""Model files that outlive this code: a plain scikit-learn pipeline and a JSON card beside it.

- ``models/<algo>_<dataset>_v<N>.pkl``: only library objects (a scikit-learn ``Pipeline``
  of the fitted ColumnTransformer and the scikit-learn or XGBoost estimator). ``joblib.load``
  reads it wherever scikit-learn, xgboost and joblib are installed; nothing of this
  repository needs to be importable, so moving code here never breaks a saved model.
- ``models/<algo>_<dataset>_v<N>.json``: the :class:`ModelCard`, everything else (input
  schema, classes, params, data snapshot and hash, training metrics and history, library
  versions, check rows), readable by people and by any language.

Loading checks what can go wrong with an old file: the card must belong to the model, library
versions that differ from the card's are a warning naming both, and the check rows must still
give the probabilities recorded at training time (else the model is refused: results would
differ). A server also requires the file's md5 to be the one ``dvc.lock`` records
(:func:`load_vouched`): git vouches for that hash, so a swapped or damaged pickle is never
unpickled.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from tabml.errors import ModelFileError, PipelineError
from tabml.features import DataInfo, first_error
from tabml.files import json_text, md5_file, read_pickle, read_yaml, write_pickle, write_text
from tabml.layout import Layout, model_id
from tabml.model import Model, single_threaded
from tabml.schema import ColumnSpec

if TYPE_CHECKING:
    import numpy as np

    from tabml.features import FeatureSpec
    from tabml.params import Params

log = logging.getLogger("tabml.artifact")

# Probabilities recorded in the card and recomputed on load may differ by rounding noise only.
CHECK_TOLERANCE = 1e-9
# Distributions whose version decides what a model file computes.
LIBRARIES = ("scikit-learn", "numpy", "scipy", "pandas", "joblib")
XGBOOST_DISTRIBUTIONS = ("xgboost", "xgboost-cpu")


class CheckRows(BaseModel):
    """Rows scored when the model was saved; loading scores them again and compares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: list[dict[str, Any]]
    proba: list[float]  # P(positive class) per row


class ModelCard(BaseModel):
    """Everything about a model file except the fitted objects themselves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    card_format: Literal[1] = 1
    model_id: str
    algo: str
    dataset: str
    version: int
    model_file: str
    loading: str  # how to use the model file without this repository
    target: str
    classes: tuple[str, str]  # (negative, positive): column order of predict_proba
    positive_class: str
    columns: list[ColumnSpec]  # the raw input schema
    feature_names: list[str]
    params: dict[str, Any]
    data: DataInfo
    train_metrics: dict[str, float | int]
    history: dict[str, list[float]] = {}  # per-round loss of iterative learners (xgb)
    libraries: dict[str, str]
    check: CheckRows
    # The decision rule the API, the batch CLI and evaluate apply: positive where
    # P(positive) >= threshold, and how it was chosen. Cards written before issue 10 lack it.
    threshold: float = 0.5
    threshold_rule: str = "fixed: 0.5"
    calibration: Literal["none", "sigmoid", "isotonic"] = "none"
    # Cross-validation on the train split (tabml.cv.cv_summary): folds, seed, rows, and per
    # metric mean, std and fold values; the leaderboard ranks by it.
    cv: dict[str, Any] | None = None


@dataclass(frozen=True)
class Decision:
    """How a model decides and how well it cross-validated: what train adds to the card."""

    threshold: float
    rule: str
    cv: dict[str, Any] | None

    def card_fields(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "threshold_rule": self.rule, "cv": self.cv}


def loading_note(file: str, positive_class: str) -> str:
    return (
        f"joblib.load('{file}') gives a scikit-learn Pipeline; predict_proba(rows)[:, 1] is "
        f"P({positive_class!r}), rows being a pandas DataFrame with the columns below "
        "(numeric as numbers, categorical as text, missing as NaN)"
    )


def _installed(name: str) -> str | None:
    names = XGBOOST_DISTRIBUTIONS if name == "xgboost" else (name,)
    for dist in names:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _versions(names: Iterable[str]) -> dict[str, str]:
    """Python (major.minor only: the patch level varies between machines, uv.lock cannot pin
    it, and it would change the card's bytes) and each installed distribution of ``names``."""
    versions = {"python": ".".join(platform.python_version_tuple()[:2])}
    for name in names:
        version = _installed(name)
        if version is not None:
            versions[name] = version
    return versions


def library_versions(estimator: Any) -> dict[str, str]:
    """The versions a model is trained with: the common stack, and xgboost when the estimator
    (or the one a CalibratedClassifierCV wraps) is one of its classes (xgb, and the Dask
    engine's random forest, XGBRFClassifier)."""
    inner = getattr(estimator, "estimator", None) or estimator
    uses_xgboost = type(inner).__module__.partition(".")[0] == "xgboost"
    return _versions((*LIBRARIES, *(("xgboost",) if uses_xgboost else ())))


def version_differences(card: ModelCard) -> list[str]:
    """Human-readable differences between the card's library versions and this environment."""
    here = _versions(name for name in card.libraries if name != "python")
    return [
        f"{name} {trained} (here {here.get(name, 'not installed')})"
        for name, trained in sorted(card.libraries.items())
        if here.get(name) != trained
    ]


def check_probabilities(model: Model) -> np.ndarray:
    """P(positive) of the card's check rows, single-threaded (bit-for-bit repeatable)."""
    estimator = model.estimator
    n_jobs = estimator.get_params(deep=False).get("n_jobs")
    single_threaded(model.pipeline)
    try:
        return model.predict_proba(model.card.check.rows)[:, 1]
    finally:
        if n_jobs is not None:
            estimator.set_params(n_jobs=n_jobs)


def save_model(layout: Layout, pipeline: Any, card: ModelCard) -> tuple[Path, Path]:
    """Write the model file and its card (each atomically); returns both paths."""
    pkl = layout.model(card.algo, card.dataset, card.version)
    json_path = layout.card(card.algo, card.dataset, card.version)
    write_pickle(pkl, pipeline)
    write_text(json_path, json_text(card.model_dump(mode="json")))
    return pkl, json_path


def save_trained(
    layout: Layout,
    params: Params,
    name: str,
    algo: str,
    fitted: tuple[FeatureSpec, Any, Any],
    metrics: dict[str, Any],
    curves: dict[str, list[float]],
    engine_params: dict[str, Any] | None = None,
    decision: Decision | None = None,
) -> Path:
    """Save a trained model of dataset ``name`` as its model file and card, for both engines.

    ``fitted`` is the featurize spec, the fitted transformer and the fitted estimator; the
    file holds the scikit-learn Pipeline of the last two. The card records the params that
    made it (``engine_params``: what a non-default engine adds, e.g. which distributed
    estimator), the training metrics and history, the decision rule and cross-validation
    results (``decision``), and check rows scored here."""
    from sklearn.pipeline import Pipeline

    from tabml.secrets import redact

    features, transformer, estimator = fitted
    spec, algo_params = params.dataset(name), params.train.algo(algo)
    version = params.train.model_version
    file = layout.model(algo, name, version).name
    pipeline = Pipeline([("preprocess", transformer), ("model", estimator)])
    card = ModelCard(
        model_id=model_id(algo, name, version),
        algo=algo,
        dataset=name,
        version=version,
        model_file=file,
        loading=loading_note(file, features.classes[1]),
        target=features.target,
        classes=features.classes,
        positive_class=features.classes[1],
        columns=features.columns,
        feature_names=features.feature_names,
        params={
            # params refuse credentials in a source URL; redacting here too keeps any
            # that slipped through out of every model file (cards are shipped with models)
            "dataset": {**spec.model_dump(), "source": redact(spec.source)},
            "featurize": params.featurize.model_dump(),
            "split": params.split.model_dump(),
            algo: algo_params.model_dump(),
            **(engine_params or {}),
        },
        data=features.data,
        train_metrics=metrics,
        history={part: [round(v, 6) for v in values] for part, values in curves.items()},
        libraries=library_versions(estimator),
        check=CheckRows(rows=features.check_rows, proba=[]),
        calibration=getattr(algo_params, "calibration", "none"),
        **(decision.card_fields() if decision else {}),
    )
    proba = check_probabilities(Model(pipeline, card)).tolist()
    card = card.model_copy(update={"check": CheckRows(rows=features.check_rows, proba=proba)})
    return save_model(layout, pipeline, card)[0]


def read_card(path: Path) -> ModelCard:
    if not path.exists():
        raise PipelineError(f"{path} does not exist: run the stage that writes it first")
    try:
        return ModelCard.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise ModelFileError(f"{path} is not a model card ({first_error(exc)})") from None


def read_model(layout: Layout, algo: str, dataset: str, version: int) -> Model:
    """Load a model file and its card, and check they still belong together and compute
    what they computed at training time (see the module docstring)."""
    from sklearn.pipeline import Pipeline

    expected = model_id(algo, dataset, version)
    card = read_card(layout.card(algo, dataset, version))
    if card.model_id != expected:
        raise ModelFileError(f"{layout.card(algo, dataset, version)} describes {card.model_id!r}")
    path = layout.model(algo, dataset, version)
    try:
        pipeline = read_pickle(path)
    except PipelineError:
        raise
    except Exception as exc:  # joblib raises whatever a damaged file makes it trip over
        raise ModelFileError(
            f"{path} cannot be loaded ({type(exc).__name__}): it is damaged or not a model "
            "file; rerun the pipeline (dvc repro) or restore it (dvc checkout)"
        ) from None
    if not isinstance(pipeline, Pipeline):
        raise ModelFileError(f"{path} does not hold a scikit-learn Pipeline")
    model = Model(pipeline, card)
    differences = version_differences(card)
    if differences:
        log.warning("%s was trained with %s", expected, "; ".join(differences))
    import numpy as np

    got = check_probabilities(model)
    worst = float(np.max(np.abs(got - np.asarray(card.check.proba)))) if len(got) else 0.0
    if not worst <= CHECK_TOLERANCE:
        trained = f" (trained with {'; '.join(differences)})" if differences else ""
        raise ModelFileError(
            f"{expected} no longer gives the probabilities recorded in its card (off by "
            f"{worst:.3g} on its check rows){trained}: retrain it (dvc repro) or install the "
            "library versions its card lists"
        )
    return model


def lock_md5s(root: Path) -> dict[str, str]:
    """{output path: md5} of every file output recorded in ``dvc.lock`` (empty without one)."""
    from ruamel.yaml import YAMLError

    try:
        lock = read_yaml(Layout(root).lock) or {}
    except (OSError, YAMLError):
        return {}
    out = {}
    stages = lock.get("stages") if isinstance(lock, dict) else None
    for stage in stages.values() if isinstance(stages, dict) else ():
        outs = stage.get("outs") if isinstance(stage, dict) else None
        for entry in outs if isinstance(outs, list) else ():
            if isinstance(entry, dict) and isinstance(entry.get("md5"), str):
                out[str(entry.get("path"))] = entry["md5"]
    return out


def load_vouched(
    root: Path, algo: str, dataset: str, version: int, lock: dict[str, str] | None = None
) -> Model:
    """:func:`read_model`, but only if dvc.lock records the md5 of the model file and card."""
    relative, layout = Layout(Path(".")), Layout(root)
    lock = lock_md5s(root) if lock is None else lock
    for rel, path in (
        (relative.model(algo, dataset, version), layout.model(algo, dataset, version)),
        (relative.card(algo, dataset, version), layout.card(algo, dataset, version)),
    ):
        if not path.exists():
            raise ModelFileError(f"{rel} is missing: run the pipeline (make repro)")
        recorded = lock.get(str(rel))
        if recorded is None:
            raise ModelFileError(
                f"{rel} is not recorded in dvc.lock: refusing to load it; run the pipeline "
                "(dvc repro) so dvc.lock vouches for it"
            )
        actual = md5_file(path)
        if actual != recorded:
            raise ModelFileError(
                f"{rel} has md5 {actual}, not the {recorded} dvc.lock records: refusing to load "
                "it; `dvc checkout` restores the recorded file, `dvc repro` retrains"
            )
    return read_model(layout, algo, dataset, version)
