"""report: one offline HTML page with every dataset's results and what they came from.

``python -m stages.report`` (stage ``report``) reads, for each dataset of params.yaml, what
the pipeline left on disk: ``metrics/leaderboard/<name>.json``, ``metrics/test/<name>/``,
the figure PNGs of ``plots/figures/<name>/``, the model cards of ``models/<name>/``, and the
md5 of the raw snapshot, the split files and the model files; plus the params sections that
produced them. It names no git revision (``tabml.report.REVISION_NOTE`` says why and how to
find it): DVC records the page's md5, so it must depend on its DVC inputs only. It
draws nothing and loads no model. Writes ``plots/report.html``: no external resource, no
script, no timestamp, so it opens anywhere and is byte-identical across reruns on the same
inputs. The page is rendered by ``tabml.report``; this script only gathers its inputs.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.cli import run_stage, stage_parser
from tabml.errors import DataError, ModelFileError
from tabml.evaluation import check_board
from tabml.files import md5_file, read_json, write_text
from tabml.layout import parse_model_id
from tabml.report import (
    FIGURE_TOPICS,
    OPTIONAL_TOPICS,
    PARAMS_SECTIONS,
    Figure,
    FileHash,
    ModelEntry,
    Section,
    caption,
    check_card,
    check_test_metrics,
    figure_order,
    report_html,
)

if TYPE_CHECKING:
    from tabml.layout import Layout
    from tabml.params import DatasetParams, Params

log = logging.getLogger("stages.report")


def _relative(layout: Layout, path: Path) -> str:
    """A path as dvc.yaml and the page spell it: relative to the repository root."""
    try:
        return path.relative_to(layout.root).as_posix()
    except ValueError:
        return path.as_posix()


def read_figures(layout: Layout, name: str, spec: DatasetParams, metric: str) -> list[Figure]:
    """Every PNG of ``plots/figures/<name>/`` in the report's order, with its caption.

    The topic is the file name before ``_<name>_<snapshot>.png`` (the whole stem for a
    file named otherwise); a topic this code does not know is shown too. A known topic's
    figure that the plot stage always draws must be there."""
    folder = layout.figures_dir(name)
    suffix = f"_{name}_{spec.snapshot}.png"
    files = sorted(p for p in folder.glob("*.png") if not p.name.startswith("."))
    topics = {(p.name[: -len(suffix)] if p.name.endswith(suffix) else p.stem): p for p in files}
    for topic in FIGURE_TOPICS:
        if topic not in topics and topic not in OPTIONAL_TOPICS:
            path = layout.figure(topic, name, spec.snapshot)
            raise DataError(f"{path} does not exist: run `dvc repro plot@{name}` first")
    return [
        Figure(
            topic,
            caption(topic, spec.target, spec.positive_class, metric),
            topics[topic].read_bytes(),
        )
        for topic in figure_order(list(topics))
    ]


def data_hashes(layout: Layout, name: str, spec: DatasetParams) -> list[FileHash]:
    """md5 of the raw snapshot and of the train and test split (for the Dask engine's
    Parquet partitions, the one md5 its featurize records in the model card)."""
    raw = layout.raw(name, spec.snapshot)
    if not raw.is_file():
        raise DataError(f"{raw} does not exist: run `dvc repro ingest@{name}` first")
    hashes = [FileHash("raw", _relative(layout, raw), md5_file(raw))]
    for part in ("train", "test"):
        if spec.engine == "dask":
            from tabml.daskengine.featurize import parts_md5

            parts = layout.interim_parts(name, part, spec.snapshot)
            if not parts:
                raise DataError(
                    f"{layout.interim_dir(name)} holds no {part} partitions: run "
                    f"`dvc repro split@{name}` first"
                )
            note = f"md5 of the names and md5 of its {len(parts)} Parquet partitions"
            folder = _relative(layout, layout.interim_dir(name))
            hashes.append(FileHash(part, folder, parts_md5(parts), note))
            continue
        path = layout.interim(name, part, spec.snapshot)
        if not path.is_file():
            raise DataError(f"{path} does not exist: run `dvc repro split@{name}` first")
        hashes.append(FileHash(part, _relative(layout, path), md5_file(path)))
    return hashes


def model_entry(layout: Layout, name: str, algo: str, model_id: str) -> ModelEntry:
    """The card (validated as a ModelCard) and md5 of one model the leaderboard names."""
    from tabml.artifact import read_card

    parsed = parse_model_id(model_id)
    if parsed is None:  # check_board refuses it first
        raise DataError(f"{model_id!r} is not a model id: rerun evaluate")
    version = parsed[2]
    rerun = f"rerun train (dvc repro train@{name}-{algo})"
    card_path, pkl = layout.card(algo, name, version), layout.model(algo, name, version)
    for path in (card_path, pkl):
        if not path.is_file():
            raise ModelFileError(f"{path} does not exist: {rerun}")
    card = read_card(card_path).model_dump(mode="json")
    check_card(card, model_id, str(card_path))
    return ModelEntry(
        card=card,
        card_text=card_path.read_text(encoding="utf-8"),
        model_file=FileHash("model", _relative(layout, pkl), md5_file(pkl)),
        card_file=FileHash("card", _relative(layout, card_path), md5_file(card_path)),
    )


def shown_params(name: str, params: Params) -> dict[str, Any]:
    """The params sections the page shows for dataset ``name``, as JSON data."""
    shown = {f"datasets.{name}": params.dataset(name).model_dump(mode="json")}
    for section in PARAMS_SECTIONS:
        shown[section] = getattr(params, section).model_dump(mode="json")
    return shown


def dataset_section(name: str, spec: DatasetParams, params: Params, layout: Layout) -> Section:
    """One dataset's part of the page, read from disk."""
    algos = params.train.algos
    board_path = layout.leaderboard(name)
    board = read_json(board_path)
    ids = check_board(name, board, algos, str(board_path))
    metrics = {}
    for algo in algos:
        path = layout.test_metrics(name, algo)
        metrics[algo] = read_json(path)
        check_test_metrics(name, metrics[algo], str(path))
    models = {algo: model_entry(layout, name, algo, ids[algo]) for algo in algos}
    figures = read_figures(layout, name, spec, board["metric"])
    log.info(
        "%s: %d figures, %d models, champion %s", name, len(figures), len(models), board["champion"]
    )
    return Section(
        dataset=name,
        board=board,
        metrics=metrics,
        models=models,
        figures=figures,
        params=shown_params(name, params),
        data=data_hashes(layout, name, spec),
    )


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    sections = [
        dataset_section(name, spec, params, layout) for name, spec in params.datasets.items()
    ]
    title = f"Model report: {', '.join(params.datasets)}"
    page = report_html(sections, title=title)
    write_text(layout.report, page)
    log.info("wrote %s (%d KB)", layout.report, len(page.encode("utf-8")) // 1024)


def main(argv: list[str] | None = None) -> int:
    """Run the report stage; returns the exit code (2 for an error a user can fix)."""
    parser = stage_parser("python -m stages.report", __doc__.splitlines()[0])
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
