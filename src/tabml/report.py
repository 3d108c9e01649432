"""The offline HTML report: every leaderboard and figure of a run in one page.

Built by ``python -m stages.report`` from what the other stages left on disk: each
dataset's leaderboard, test metrics and figure PNGs (``plots/figures/<dataset>/``), with
the figures in :data:`FIGURE_TOPICS` order and one caption each (:func:`caption`, the one
home of the captions). The page is rendered from the jinja2 template
``tabml/templates/report.html.j2`` (shipped in the package, so it renders the same from a
checkout, an editable install or a wheel). It has no external resource (figures are PNG
data URIs, the CSS is inline) and no timestamp, so it opens anywhere and its hash changes
only when a result does. jinja2 loads only when a page is rendered.
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError
from tabml.metrics import LOWER_IS_BETTER, METRICS
from tabml.plots import compare, eda

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "report.html.j2"
# Every figure the plot stage draws for a dataset, in the report's order; an optional topic
# (loss) has no figure when no model has its plot data.
FIGURE_TOPICS = eda.EDA_TOPICS + compare.MODEL_TOPICS
OPTIONAL_TOPICS = compare.OPTIONAL_TOPICS
CAPTIONS = {**eda.CAPTIONS, **compare.CAPTIONS}


def caption(topic: str, target: str, positive_class: str, metric: str) -> str:
    """The report caption of one figure topic of a dataset (target column, positive class,
    and the leaderboard's metric filled in)."""
    return CAPTIONS[topic].format(
        target=target, positive=positive_class, metric=metric, top=compare.TOP_FEATURES
    )


@dataclass(frozen=True)
class Section:
    """One dataset's part of the report: its leaderboard, test metrics and rendered figures."""

    dataset: str
    board: Mapping[str, Any]
    metrics: Mapping[str, Mapping[str, float]]
    model_ids: Mapping[str, str]
    figures: Sequence[tuple[str, str, bytes]]  # (topic, caption, PNG bytes)


def format_value(value: Any) -> str:
    """A table cell as text: thousands separators for counts, 4 decimals for metrics."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)


def leaderboard_rows(
    board: Mapping[str, Any],
    metrics: Mapping[str, Mapping[str, float]],
    model_ids: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Leaderboard joined with test metrics, in rank order: the data of the report table."""
    metric = board["metric"]
    rows = []
    for rank, algo in enumerate(board["ranking"], start=1):
        if algo not in metrics:
            raise DataError(
                f"leaderboard ranks {algo!r} but it has no test metrics: rerun evaluate"
            )
        row: dict[str, Any] = {
            "rank": rank,
            "algorithm": algo,
            "model": model_ids.get(algo, algo),
            metric: board.get("scores", {}).get(algo, metrics[algo].get(metric)),
        }
        row.update({k: v for k, v in metrics[algo].items() if k not in row})
        rows.append(row)
    return rows


def _classes(*flags: tuple[str, bool]) -> str:
    return " ".join(name for name, on in flags if on)


def _table(board: Mapping[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Header and cells of the leaderboard table, with the CSS classes of each cell."""
    metric = board["metric"]
    header = ["rank", "algorithm", "model", metric]
    extra = [m for m in [*METRICS, "n_test"] if any(m in r for r in rows) and m not in header]
    extra += sorted({k for r in rows for k in r} - set(header) - set(extra))
    columns = header + extra
    numeric = {c for c in columns if any(not isinstance(r.get(c), str) for r in rows)}
    head = [
        {
            "name": c,
            "classes": _classes(("num", c in numeric), ("key", c == metric)),
            "arrow": " ↓" if c in LOWER_IS_BETTER else " ↑" if c in METRICS else "",
        }
        for c in columns
    ]
    body = []
    for row in rows:
        best = row["algorithm"] == board.get("best_algo")
        cells = []
        for c in columns:
            value = row.get(c)
            cells.append(
                {
                    "text": format_value(value),
                    "classes": _classes(("num", not isinstance(value, str)), ("key", c == metric)),
                    "mark": " ★" if best and c == "algorithm" else "",  # visible in print, too
                }
            )
        body.append({"best": best, "cells": cells})
    return {"head": head, "rows": body}


def _summary(board: Mapping[str, Any]) -> dict[str, str]:
    """The best model of a board in words, for the navigation and the section intro."""
    return {
        "best_model": str(board.get("best_model")),
        "metric": str(board.get("metric")),
        "score": format_value(board.get("best_score")),
        "better": "higher" if board.get("higher_is_better", True) else "lower",
    }


def _context(sections: Sequence[Section], title: str) -> dict[str, Any]:
    """Everything the template shows, as plain strings and lists (no logic left for it)."""
    return {
        "title": title,
        "sections": [
            {
                "dataset": s.dataset,
                "summary": _summary(s.board),
                "table": _table(s.board, leaderboard_rows(s.board, s.metrics, s.model_ids)),
                "figures": [
                    {
                        "topic": topic,
                        "caption": text,
                        "data": base64.b64encode(png).decode("ascii"),
                    }
                    for topic, text, png in s.figures
                ],
            }
            for s in sections
        ],
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
    """One offline HTML page: leaderboards, test metrics and figures (PNG as data URIs).

    No external resource and no timestamp, so it opens anywhere and its hash changes
    only when a result does.
    """
    return _environment().get_template(TEMPLATE).render(_context(sections, title))
