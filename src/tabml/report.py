"""The offline HTML report: what a run decided, and everything a reviewer needs to trust it.

Built by ``python -m stages.report``, which reads what the other stages left on disk and
hands it to :func:`report_html` (this module reads no file and runs no command). Per dataset
the page shows:

- the verdict: the champion and why (the leaderboard's ``reason``), or that there is none
  and why;
- the leaderboard: per model its CV mean ± std of the ranking metric, its test value with the
  95% bootstrap interval, the decision threshold and how it was chosen, the calibration;
- every test metric with its interval, at each model's threshold;
- every figure of ``plots/figures/<dataset>/`` (:func:`figure_order`: EDA, then models, then
  any topic this module does not know, with one caption each from :func:`caption`);
- each model's card: its key facts in a table, the whole JSON in a ``<details>`` element;
- the data: the raw snapshot, the split files, the model files and cards with their md5
  (as DVC records them), and whether each card's train data is the split on disk;
- the params that produced it (the dataset's and the split, featurize, train and evaluate
  sections), with the dotted names ``dvc exp run -S`` takes;

and once, how to find its git revision (:data:`REVISION_NOTE`: the page does not name it).

The page is rendered from the jinja2 template ``tabml/templates/report.html.j2`` (package
data, so it renders the same from a checkout or a wheel). It has no external resource
(figures are PNG data URIs, the CSS is inline), no script and no timestamp: it opens
anywhere, offline, and its bytes change only when an input does. Every string it shows
passes :func:`tabml.secrets.redacted`. jinja2 loads only when a page is rendered.
"""

from __future__ import annotations

import base64
import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError, ModelFileError
from tabml.metrics import LOWER_IS_BETTER, METRICS
from tabml.plots import compare, eda
from tabml.secrets import redact, redacted

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "report.html.j2"
# The figures the plot stage draws for a dataset, in the report's order: EDA, then models.
# An optional topic (loss) has no figure when no model has its plot data; a PNG of a topic
# not listed here is shown after these, in name order (:func:`figure_order`).
FIGURE_TOPICS = eda.EDA_TOPICS + compare.MODEL_TOPICS
OPTIONAL_TOPICS = compare.OPTIONAL_TOPICS
# One caption per topic, kept beside the code that draws the figure.
CAPTIONS = {**eda.CAPTIONS, **compare.CAPTIONS}
UNKNOWN_CAPTION = "A figure of topic {topic!r} drawn by the plot stage (no caption for it here)."

# What the report reads of each test-metrics file: without it the file is from an older
# evaluate (a leaderboard is checked by tabml.evaluation.check_board).
TEST_KEYS = ("threshold", "ci95")
# The parts of a dataset's data, in the report's order, as :class:`FileHash` roles.
DATA_ROLES = {"raw": "raw snapshot", "train": "train split", "test": "test split"}
# The params sections shown (besides ``datasets.<name>``): those the pipeline up to evaluate
# reads.
PARAMS_SECTIONS = ("split", "featurize", "train", "evaluate")
CHAMPION_MARK = "★"
# At most this many uncommitted paths are named on the page.


def caption(topic: str, target: str, positive_class: str, metric: str) -> str:
    """The report caption of one figure topic of a dataset (target column, positive class,
    and the leaderboard's metric filled in); a generic one for a topic without a caption."""
    if topic not in CAPTIONS:
        return UNKNOWN_CAPTION.format(topic=topic)
    return CAPTIONS[topic].format(
        target=target, positive=positive_class, metric=metric, top=compare.TOP_FEATURES
    )


def figure_order(topics: Sequence[str]) -> list[str]:
    """``topics`` in the report's order: :data:`FIGURE_TOPICS` first (EDA, then models),
    then any other topic by name."""
    known = {topic: i for i, topic in enumerate(FIGURE_TOPICS)}
    return sorted(topics, key=lambda t: (known.get(t, len(known)), t))


# --- what the stage hands over ------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One PNG of ``plots/figures/<dataset>/``."""

    topic: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class FileHash:
    """A file the page vouches for: its path (relative to the repository) and md5.

    ``role`` is a key of :data:`DATA_ROLES` for data files; ``note`` says more (e.g. that the
    md5 is of the list of a split's Parquet partitions).
    """

    role: str
    path: str
    md5: str
    note: str = ""


@dataclass(frozen=True)
class ModelEntry:
    """One model of a dataset: its card (as JSON data and as the file's text) and the md5
    of its model file and card."""

    card: Mapping[str, Any]
    card_text: str
    model_file: FileHash
    card_file: FileHash


@dataclass(frozen=True)
class Section:
    """One dataset's part of the report.

    ``metrics`` and ``models`` are keyed by algorithm; ``params`` maps a params path
    (``datasets.<name>``, ``split``...) to that section's values; ``data`` lists the
    dataset's files with their md5 (:data:`DATA_ROLES`).
    """

    dataset: str
    board: Mapping[str, Any]
    metrics: Mapping[str, Mapping[str, Any]]
    models: Mapping[str, ModelEntry]
    figures: Sequence[Figure]
    params: Mapping[str, Any] = field(default_factory=dict)
    data: Sequence[FileHash] = ()


# Why the page names no commit, and how to find it: DVC records the page's md5 in dvc.lock, so
# a page naming the commit it was built at could never be rebuilt byte for byte on a fresh
# clone of the commit that records it (committing the outputs makes a new commit).
REVISION_NOTE = (
    "not written into the page, so that a fresh clone rebuilds it byte for byte; the commit "
    "whose dvc.lock records this file's md5 is its revision: "
    "git log --oneline -S $(md5sum plots/report.html | cut -c1-32) -- dvc.lock"
)


# --- format checks: a file from an older stage is one line naming it ---------------------


def check_test_metrics(dataset: str, metrics: Mapping[str, Any], source: str) -> None:
    """Refuse test metrics an older evaluate wrote (no ``threshold`` or ``ci95``)."""
    for key in TEST_KEYS:
        if not isinstance(metrics, Mapping) or key not in metrics:
            raise DataError(
                f"{source} has no {key!r} (an older test-metrics format): rerun evaluate "
                f"(dvc repro evaluate@{dataset})"
            )


def check_card(card: Mapping[str, Any], model_id: str, source: str) -> None:
    """A card must describe the model the leaderboard names."""
    if card.get("model_id") != model_id:
        raise ModelFileError(
            f"{source} describes {card.get('model_id')!r}, not {model_id!r}: rerun train"
        )


# --- formatting ---------------------------------------------------------------------------


def format_value(value: Any) -> str:
    """A table cell as text: thousands separators for counts, 4 decimals for metrics."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)


def format_threshold(value: Any) -> str:
    """A decision threshold with the digits that decide (0.5, 0.371234)."""
    return f"{value:.6g}" if isinstance(value, int | float) else format_value(value)


def mean_std(mean: Any, std: Any) -> str:
    """``mean ± std``; a model trained without cross-validation has neither."""
    if mean is None:
        return "not cross-validated"
    return format_value(mean) if std is None else f"{format_value(mean)} ± {format_value(std)}"


def interval(low: Any, high: Any) -> str:
    """``[low, high]``; an undefined bound (null: e.g. one class in every resample) is n/a."""
    return f"[{format_value(low) or 'n/a'}, {format_value(high) or 'n/a'}]"


def param_text(value: Any) -> str:
    """A params value as YAML would spell it: null, true, [a, b], numbers as written."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(param_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {param_text(v)}" for k, v in value.items()) + "}"
    return repr(value) if isinstance(value, float) else str(value)


def flat_params(prefix: str, value: Any) -> list[tuple[str, str]]:
    """(dotted name, value text) of every leaf of a params section, in its order."""
    if isinstance(value, Mapping) and value:
        rows = []
        for key, item in value.items():
            rows += flat_params(f"{prefix}.{key}" if prefix else str(key), item)
        return rows
    return [(prefix, param_text(value))]


def _arrow(metric: str) -> str:
    return " ↓" if metric in LOWER_IS_BETTER else " ↑" if metric in METRICS else ""


def _metric_order(names: Any) -> list[str]:
    """Metric names in :data:`METRICS` order, then any other by name, counts (n_*) last."""
    names = set(names)
    known = [m for m in METRICS if m in names]
    counts = sorted(n for n in names - set(known) if n.startswith("n_"))
    return known + sorted(names - set(known) - set(counts)) + counts


def _anchor(text: str) -> str:
    """A fragment-safe id part (dataset names and model ids already are)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)


# --- the context the template shows ------------------------------------------------------


def _verdict(dataset: str, board: Mapping[str, Any]) -> dict[str, Any]:
    """The champion (or none) and why, for the navigation and the section intro."""
    champion = board["champion"]
    model = board["models"][champion]["model_id"] if champion is not None else None
    return {
        "champion": model,
        "reason": str(board["reason"]),
        "metric": str(board["metric"]),
        "better": "higher" if board["higher_is_better"] else "lower",
        "rule": str(board["rule"]),
        "min_score": format_value(board.get("min_score")) or "none",
        "cv_folds": format_value(board.get("cv_folds")),
    }


def _leaderboard(board: Mapping[str, Any]) -> dict[str, Any]:
    """Header and rows of the leaderboard table, in rank order."""
    metric = board["metric"]
    folds = board.get("cv_folds")
    head = [
        {"name": "rank", "classes": "num"},
        {"name": "model", "classes": ""},
        {"name": "algorithm", "classes": ""},
        {
            "name": f"CV {metric}{_arrow(metric)} mean ± std"
            + (f" ({folds} folds)" if folds else ""),
            "classes": "num key",
        },
        {"name": f"test {metric}{_arrow(metric)} [95% interval]", "classes": "num"},
        {"name": "threshold (rule)", "classes": ""},
        {"name": "calibration", "classes": ""},
    ]
    rows = []
    for rank, algo in enumerate(board["ranking"], start=1):
        entry = board["models"][algo]
        champion = algo == board["champion"]
        cells = [
            {"text": str(rank), "classes": "num"},
            {
                "text": str(entry["model_id"]),
                "mark": f" {CHAMPION_MARK} champion" if champion else "",
                "href": f"#card-{entry['model_id']}",
                "classes": "",
            },
            {"text": algo, "classes": ""},
            {"text": mean_std(entry["cv_mean"], entry["cv_std"]), "classes": "num key"},
            {
                "text": f"{format_value(entry['test'])} "
                f"{interval(entry['test_low'], entry['test_high'])}",
                "classes": "num",
            },
            {
                "text": f"{format_threshold(entry['threshold'])} ({entry['threshold_rule']})",
                "classes": "",
            },
            {"text": str(entry["calibration"]), "classes": ""},
        ]
        rows.append({"champion": champion, "cells": cells})
    return {"head": head, "rows": rows}


def _test_metrics(section: Section) -> dict[str, Any]:
    """Every test metric (rows) of every model (columns, in rank order) with its interval."""
    board, ranking = section.board, section.board["ranking"]
    for algo in ranking:
        if algo not in section.metrics:
            raise DataError(
                f"leaderboard of {section.dataset!r} ranks {algo!r} but it has no test "
                f"metrics: rerun evaluate (dvc repro evaluate@{section.dataset})"
            )
    names = _metric_order({k for algo in ranking for k in section.metrics[algo]} - set(TEST_KEYS))
    rows = []
    for name in names:
        cells = []
        for algo in ranking:
            values = section.metrics[algo]
            ci = values.get("ci95", {}).get(name)
            text = format_value(values.get(name))
            if isinstance(ci, Mapping) and name in values:
                text += f" {interval(ci.get('low'), ci.get('high'))}"
            cells.append(text)
        rows.append(
            {"name": name, "arrow": _arrow(name), "key": name == board["metric"], "cells": cells}
        )
    thresholds = [format_threshold(section.metrics[a].get("threshold")) for a in ranking]
    rows.append({"name": "threshold", "arrow": "", "key": False, "cells": thresholds})
    models = [
        {
            "id": str(board["models"][algo]["model_id"]),
            "mark": f" {CHAMPION_MARK}" if algo == board["champion"] else "",
        }
        for algo in ranking
    ]
    return {"models": models, "rows": rows}


def _pairs(values: Mapping[str, Any] | None, fmt: Any = format_value) -> list[dict[str, str]]:
    return [{"key": str(k), "value": fmt(v)} for k, v in (values or {}).items()]


def _card(section: Section, algo: str) -> dict[str, Any]:
    """Key facts of one model card (rows of a table, some holding a small table) and the
    card's own text."""
    entry = section.models[algo]
    card = redacted(dict(entry.card))
    data = card.get("data") or {}
    train = next((f for f in section.data if f.role == "train"), None)
    train_md5 = str(data.get("train_md5", ""))
    if train is None:
        check, ok = "", True
    elif train_md5 == train.md5:
        check, ok = "matches the train split on disk", True
    else:
        check, ok = (
            f"differs from the train split on disk ({train.md5}): this model was trained on "
            f"other data, rerun train (dvc repro train@{section.dataset}-{algo})",
            False,
        )
    cv = card.get("cv")
    cv_metrics = (cv or {}).get("metrics") or {}
    cv_rows = [
        {
            "key": metric,
            "value": mean_std(cv_metrics[metric].get("mean"), cv_metrics[metric].get("std")),
            "folds": ", ".join(format_value(v) for v in cv_metrics[metric].get("values", [])),
        }
        for metric in _metric_order(cv_metrics)
    ]
    cv_text = (
        f"{format_value(cv.get('folds'))} folds, seed {format_value(cv.get('seed'))}, "
        f"{format_value(cv.get('rows'))} train rows"
        if cv
        else "none recorded (a card written before cross-validation): rerun train"
    )
    params = card.get("params") or {}
    facts = [
        {"key": "model id", "value": str(card.get("model_id"))},
        {"key": "algorithm", "value": f"{card.get('algo')} (version {card.get('version')})"},
        {
            "key": "model file",
            "value": f"{entry.model_file.path}",
            "md5": entry.model_file.md5,
        },
        {"key": "card file", "value": entry.card_file.path, "md5": entry.card_file.md5},
        {
            "key": "target",
            "value": f"{card.get('target')} (positive class {card.get('positive_class')!r}, "
            f"{len(card.get('columns') or [])} input columns, "
            f"{len(card.get('feature_names') or [])} features)",
        },
        {
            "key": "threshold",
            "value": f"{format_threshold(card.get('threshold'))} ({card.get('threshold_rule')})",
        },
        {"key": "calibration", "value": str(card.get("calibration"))},
        {
            "key": "params",
            "value": f"{algo} (the dataset, split and featurize params are in the full card)",
            "pairs": _pairs(params.get(algo), param_text),
        },
        {"key": "cross-validation", "value": cv_text, "cv": cv_rows},
        {"key": "train metrics", "value": "", "pairs": _pairs(card.get("train_metrics"))},
        {"key": "libraries", "value": "", "pairs": _pairs(card.get("libraries"))},
        {
            "key": "data",
            "value": f"snapshot {data.get('snapshot')}, {format_value(data.get('train_rows'))} "
            f"train rows from {data.get('train_file')}",
            "md5": train_md5,
            "check": check,
            "ok": ok,
        },
    ]
    return {
        "id": str(card.get("model_id")),
        "algo": algo,
        "champion": algo == section.board["champion"],
        "facts": facts,
        "json": redact(entry.card_text),
    }


def _data(section: Section) -> list[dict[str, str]]:
    """The data files and the model files with their md5, as one table."""
    rows = [
        {"what": DATA_ROLES.get(f.role, f.role), "path": f.path, "md5": f.md5, "note": f.note}
        for f in section.data
    ]
    for algo in section.board["ranking"]:
        entry = section.models[algo]
        model = entry.card.get("model_id", algo)
        rows.append({"what": f"model {model}", **_file(entry.model_file)})
        rows.append({"what": f"card of {model}", **_file(entry.card_file)})
    return rows


def _file(f: FileHash) -> dict[str, str]:
    return {"path": f.path, "md5": f.md5, "note": f.note}


def _section(section: Section) -> dict[str, Any]:
    name = section.dataset
    missing = [a for a in section.board["ranking"] if a not in section.models]
    if missing:
        raise ModelFileError(
            f"no model card of {missing[0]!r} for dataset {name!r}: rerun train "
            f"(dvc repro train@{name}-{missing[0]})"
        )
    return {
        "dataset": name,
        "verdict": _verdict(name, section.board),
        "leaderboard": _leaderboard(section.board),
        "test": _test_metrics(section),
        "figures": [
            {
                "id": f"{name}-fig-{_anchor(f.topic)}",
                "topic": f.topic,
                "caption": f.caption,
                "data": base64.b64encode(f.png).decode("ascii"),
            }
            for f in section.figures
        ],
        "cards": [_card(section, algo) for algo in section.board["ranking"]],
        "data": _data(section),
        "params": [
            {"section": path, "rows": flat_params(path, redacted(values))}
            for path, values in section.params.items()
        ],
    }


def _context(sections: Sequence[Section], title: str) -> dict[str, Any]:
    """Everything the template shows, as plain strings and lists (no logic left for it)."""
    return {
        "title": title,
        "revision": REVISION_NOTE,
        "sections": [_section(s) for s in sections],
    }


@functools.cache
def _environment() -> jinja2.Environment:
    """The template environment: escapes every value; templates come from the package."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("tabml", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def report_html(sections: Sequence[Section], title: str = "Model report") -> str:
    """One offline HTML page of every dataset's results and their provenance (see the
    module docstring); the same inputs give the same bytes."""
    return _environment().get_template(TEMPLATE).render(_context(sections, title))
