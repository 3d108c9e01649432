"""report: one offline HTML page with every dataset's leaderboard, test metrics and figures.

``python -m stages.report`` (stage ``report``) reads, for each dataset of params.yaml,
``metrics/leaderboard/<name>.json``, ``metrics/test/<name>/`` and the figure PNGs that
``plot@<name>`` left in ``plots/figures/<name>/``; it draws nothing and loads no model.
Writes ``plots/report.html``: no external resource (figures are data URIs), no timestamp,
so it opens anywhere and is byte-identical across reruns on the same inputs. The page is
rendered by ``tabml.report``; this script only reads the inputs and writes the output.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from tabml.cli import run_stage, stage_parser
from tabml.errors import DataError
from tabml.evaluation import ranked_models
from tabml.files import read_json, write_text
from tabml.report import FIGURE_TOPICS, OPTIONAL_TOPICS, Section, caption, report_html

if TYPE_CHECKING:
    from tabml.layout import Layout
    from tabml.params import DatasetParams, Params

log = logging.getLogger("stages.report")


def read_figures(
    layout: Layout, name: str, spec: DatasetParams, metric: str
) -> list[tuple[str, str, bytes]]:
    """(topic, caption, PNG bytes) of every figure of one dataset, in the report's order;
    an optional topic without a figure is left out, any other missing one is an error."""
    figures = []
    for topic in FIGURE_TOPICS:
        path = layout.figure(topic, name, spec.snapshot)
        if not path.is_file():
            if topic in OPTIONAL_TOPICS:
                continue
            raise DataError(f"{path} does not exist: run `dvc repro plot@{name}` first")
        text = caption(topic, spec.target, spec.positive_class, metric)
        figures.append((topic, text, path.read_bytes()))
    return figures


def dataset_section(name: str, spec: DatasetParams, params: Params, layout: Layout) -> Section:
    """One dataset's part of the page, read from disk."""
    algos = params.train.algos
    board = read_json(layout.leaderboard(name))
    ids = ranked_models(name, board, algos)
    metrics = {algo: read_json(layout.test_metrics(name, algo)) for algo in algos}
    figures = read_figures(layout, name, spec, board["metric"])
    log.info("%s: %d figures, best %s", name, len(figures), board["best_model"])
    return Section(name, board, metrics, ids, figures)


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    sections = [
        dataset_section(name, spec, params, layout) for name, spec in params.datasets.items()
    ]
    page = report_html(sections, title=f"Model report: {', '.join(params.datasets)}")
    write_text(layout.report, page)
    log.info("wrote %s (%d KB)", layout.report, len(page.encode("utf-8")) // 1024)


def main(argv: list[str] | None = None) -> int:
    """Run the report stage; returns the exit code (2 for an error a user can fix)."""
    parser = stage_parser("python -m stages.report", __doc__.splitlines()[0])
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
