"""plot: EDA and model-comparison figures per dataset, and one self-contained HTML report.

Reads only CSV and JSON written by earlier stages (raw data, test metrics, leaderboards and
the plot data of ``evaluate``); never loads a model. Writes:

- ``plots/figures/<topic>_<dataset>_<date>.png`` for topic balance, distributions, missing,
  correlations (EDA of the raw snapshot) and roc, pr, calibration, metrics, importance (the
  models on the test split), and loss (per-round train/validation log loss) when at least
  one model of the dataset trains in rounds (xgb);
- ``plots/report.html``: every leaderboard and figure in one page that opens offline.

Figures and report are byte-identical across reruns on the same inputs (no timestamps, PNG
without the Software tag), so DVC sees an unchanged output as unchanged. The figures are drawn
by ``tabml.plots.eda`` and ``tabml.plots.compare``, the page by ``tabml.report``; this script
only reads the inputs and writes the outputs.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.cli import run_stage, stage_parser
from tabml.files import atomic_path, read_csv, read_json, replace_dir, write_text
from tabml.plots import compare, eda, render_png
from tabml.report import Section, model_ids, report_html
from tabml.target import as_in_data

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from tabml.layout import Layout
    from tabml.params import DatasetParams, Params

log = logging.getLogger("stages.plot")

TOPICS = eda.EDA_TOPICS + compare.MODEL_TOPICS
OPTIONAL_TOPICS = compare.OPTIONAL_TOPICS
CAPTIONS = {**eda.CAPTIONS, **compare.CAPTIONS}


def caption(topic: str, spec: DatasetParams, metric: str) -> str:
    """The report caption of one figure topic."""
    return CAPTIONS[topic].format(
        target=spec.target, positive=spec.positive_class, metric=metric, top=compare.TOP_FEATURES
    )


def dataset_figures(
    name: str,
    spec: DatasetParams,
    raw: pd.DataFrame,
    metrics: Mapping[str, Mapping[str, float]],
    board: Mapping[str, Any],
    plot_data: Mapping[str, Mapping[str, pd.DataFrame]],
    params: Params,
) -> Iterator[tuple[str, Figure]]:
    """Every figure of one dataset, in TOPICS order, built lazily (one open figure at a time).

    An optional topic (loss) is left out when no algorithm has its plot data.
    """
    frame = raw.drop(columns=spec.drop_columns, errors="ignore")
    cap = params.plot.max_numeric_columns
    target = spec.target
    positive = as_in_data(frame[target], spec.positive_class)  # "1.0" in params, 1 in the file
    yield "balance", eda.balance_figure(frame, target, positive, name)
    yield "distributions", eda.distributions_figure(frame, target, positive, name, cap)
    yield "missing", eda.missing_figure(frame, name)
    yield "correlations", eda.correlations_figure(frame, name, cap, exclude=[target])
    yield "roc", compare.roc_figure(plot_data["roc"], metrics, name)
    yield "pr", compare.pr_figure(plot_data["pr"], metrics, name)
    yield "calibration", compare.calibration_figure(plot_data["calibration"], name)
    yield "metrics", compare.metrics_figure(metrics, board, name)
    yield "importance", compare.importance_figure(plot_data["importance"], name, board["metric"])
    if plot_data.get("loss"):
        yield "loss", compare.loss_figure(plot_data["loss"], name, params.train.algos)


def read_plot_data(
    layout: Layout, dataset: str, date: str, algos: Sequence[str]
) -> dict[str, dict[str, pd.DataFrame]]:
    """Plot data per topic and algorithm; an optional topic keeps the algorithms that have it."""
    data = {}
    for topic in compare.CURVE_COLUMNS:
        paths = {algo: layout.plot_data(topic, dataset, algo, date) for algo in algos}
        if topic in OPTIONAL_TOPICS:
            paths = {algo: path for algo, path in paths.items() if path.is_file()}
        data[topic] = {algo: read_csv(path) for algo, path in paths.items()}
    return data


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    algos = params.train.algos
    pngs: dict[Path, bytes] = {}
    sections = []
    for name, spec in params.datasets.items():
        raw = read_csv(layout.raw(name, spec.snapshot), low_memory=False)
        metrics = {algo: read_json(layout.test_metrics(name, algo)) for algo in algos}
        board = read_json(layout.leaderboard(name))
        ids = model_ids(name, board, algos)
        plot_data = read_plot_data(layout, name, spec.snapshot, algos)
        figures = []
        for topic, fig in dataset_figures(name, spec, raw, metrics, board, plot_data, params):
            png = render_png(fig, params.plot.dpi)
            pngs[layout.figure(topic, name, spec.snapshot)] = png
            figures.append((topic, caption(topic, spec, board["metric"]), png))
        best = board["best_model"]
        log.info("%s: %d figures (%d raw rows, best %s)", name, len(figures), len(raw), best)
        sections.append(Section(name, board, metrics, ids, figures))

    def write_figures(tmp: Path) -> None:
        for path, png in pngs.items():
            with atomic_path(tmp / path.name) as out:
                out.write_bytes(png)

    replace_dir(layout.figures_dir, write_figures)
    log.info("wrote %d figures to %s", len(pngs), layout.figures_dir)
    page = report_html(sections, title=f"Model report: {', '.join(params.datasets)}")
    write_text(layout.report, page)
    log.info("wrote %s (%d KB)", layout.report, len(page.encode("utf-8")) // 1024)


def main(argv: list[str] | None = None) -> int:
    """Run the plot stage; returns the exit code (2 for an error a user can fix)."""
    parser = stage_parser("python -m stages.plot", __doc__.splitlines()[0])
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
