"""plot: the EDA and model-comparison figures of one dataset.

``python -m stages.plot --dataset <name>`` (stage ``plot@<name>``) reads only CSV and JSON
written by earlier stages (the raw snapshot, the test metrics, the leaderboard and the plot
data of ``evaluate@<name>``); it never loads a model. Writes
``plots/figures/<name>/<topic>_<name>_<date>.png`` for topic balance, distributions,
categorical, missing, correlations (EDA of a seeded sample of at most ``plot.eda_rows`` raw
rows) and roc, pr, calibration, confusion (at each model's threshold), metrics (the
leaderboard's champion outlined), importance (the models on the test split), and loss
(per-round train/validation log loss) when at least one model trains in rounds (xgb). Every
other topic always has a figure: one with nothing to draw says so in its text.
``python -m stages.report`` puts every dataset's figures into one page.

Figures are byte-identical across reruns on the same inputs (seeded sample, no timestamps,
PNG without the Software tag), so DVC sees an unchanged output as unchanged. They are drawn
by ``tabml.plots.eda`` and ``tabml.plots.compare``; this script only reads and writes.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.cli import run_stage, stage_parser
from tabml.csvfile import CsvOptions, read_dataset
from tabml.evaluation import check_board
from tabml.files import atomic_path, read_csv, read_json, replace_dir
from tabml.plots import compare, eda, render_png
from tabml.target import as_in_data

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from tabml.layout import Layout
    from tabml.params import DatasetParams, Params

log = logging.getLogger("stages.plot")


def read_raw_sample(
    path: Path, spec: DatasetParams, rows: int, seed: int = eda.SAMPLE_SEED
) -> tuple[pd.DataFrame, int]:
    """The raw snapshot minus ``drop_columns`` (never parsed), cut to a seeded sample of at
    most ``rows`` rows in file order, and the snapshot's row count."""
    dropped = set(spec.drop_columns)
    frame = read_dataset(path, CsvOptions.of(spec), usecols=lambda column: column not in dropped)
    return eda.sample_rows(frame, rows, seed), len(frame)


def dataset_figures(
    name: str,
    spec: DatasetParams,
    raw: pd.DataFrame,
    metrics: Mapping[str, Mapping[str, float]],
    board: Mapping[str, Any],
    plot_data: Mapping[str, Mapping[str, pd.DataFrame]],
    params: Params,
    total_rows: int | None = None,
) -> Iterator[tuple[str, Figure]]:
    """Every figure of one dataset, EDA then model topics, built lazily (one open figure at
    a time). ``raw`` may be a sample of ``total_rows`` rows (the EDA titles say so). An
    optional topic (loss) is left out when no algorithm has its plot data.
    """
    frame = raw.drop(columns=spec.drop_columns, errors="ignore")
    cap = params.plot.max_numeric_columns
    levels = {
        "max_columns": params.plot.max_categorical_columns,
        "max_levels": params.plot.max_levels,
    }
    target = spec.target
    eda.require_target(frame, target, name)
    positive = as_in_data(frame[target], spec.positive_class)  # "1.0" in params, 1 in the file
    rows = {"total_rows": total_rows}
    yield "balance", eda.balance_figure(frame, target, positive, name, **rows)
    yield "distributions", eda.distributions_figure(frame, target, positive, name, cap, **rows)
    yield "categorical", eda.categorical_figure(frame, target, positive, name, **levels, **rows)
    yield "missing", eda.missing_figure(frame, name, **rows)
    yield "correlations", eda.correlations_figure(frame, name, cap, [target], **rows)
    yield "roc", compare.roc_figure(plot_data["roc"], metrics, name)
    yield "pr", compare.pr_figure(plot_data["pr"], metrics, name)
    yield "calibration", compare.calibration_figure(plot_data["calibration"], name)
    confusion = plot_data["confusion"]
    yield "confusion", compare.confusion_figure(confusion, metrics, name, spec.positive_class)
    yield "metrics", compare.metrics_figure(metrics, board, name)
    yield "importance", compare.importance_figure(plot_data["importance"], name, board["metric"])
    if plot_data.get("loss"):
        yield "loss", compare.loss_figure(plot_data["loss"], name, params.train.algos)


def read_plot_data(
    layout: Layout, dataset: str, date: str, algos: Sequence[str]
) -> dict[str, dict[str, pd.DataFrame]]:
    """Plot data per topic and algorithm, each checked for the columns its figure reads; an
    optional topic keeps the algorithms that have it."""
    data = {}
    for topic in compare.CURVE_COLUMNS:
        paths = {algo: layout.plot_data(topic, dataset, algo, date) for algo in algos}
        if topic in compare.OPTIONAL_TOPICS:
            paths = {algo: path for algo, path in paths.items() if path.is_file()}
        data[topic] = {algo: read_csv(path) for algo, path in paths.items()}
        for algo, frame in data[topic].items():
            compare.check_plot_data(topic, frame, dataset, algo)
    return data


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    name = args.dataset
    spec = params.dataset(name)
    algos = params.train.algos
    metrics = {algo: read_json(layout.test_metrics(name, algo)) for algo in algos}
    board = read_json(layout.leaderboard(name))
    check_board(name, board, algos, str(layout.leaderboard(name)))  # an older one: rerun
    plot_data = read_plot_data(layout, name, spec.snapshot, algos)
    raw, total = read_raw_sample(layout.raw(name, spec.snapshot), spec, params.plot.eda_rows)
    pngs: dict[Path, bytes] = {}
    figures = dataset_figures(name, spec, raw, metrics, board, plot_data, params, total)
    for topic, fig in figures:
        pngs[layout.figure(topic, name, spec.snapshot)] = render_png(fig, params.plot.dpi)

    def write_figures(tmp: Path) -> None:
        for path, png in pngs.items():
            with atomic_path(tmp / path.name) as out:
                out.write_bytes(png)

    replace_dir(layout.figures_dir(name), write_figures)
    log.info(
        "%s: wrote %d figures to %s (EDA of %d of %d raw rows)",
        name,
        len(pngs),
        layout.figures_dir(name),
        len(raw),
        total,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the plot stage for one dataset; returns the exit code (2 for a user error)."""
    parser = stage_parser("python -m stages.plot", __doc__.splitlines()[0], dataset=True)
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
