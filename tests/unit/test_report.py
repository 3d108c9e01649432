"""The offline report: the page (tabml.report) and the report stage, which builds it from
what the evaluate and plot stages left on disk (leaderboards, test metrics, figure PNGs)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
import yaml

from stages import report as report_stage
from tabml import report
from tabml.errors import DataError
from tabml.evaluation import ranked_models
from tabml.layout import Layout
from tabml.metrics import METRICS
from tests.unit.test_plot import ALGOS, REPO, SNAPSHOT, all_metrics, board, metrics_of

# --- the page ---------------------------------------------------------------------------


def test_leaderboard_rows_follow_ranking_with_all_metrics() -> None:
    rows = report.leaderboard_rows(board(), all_metrics(), {"rf": "rf_tiny_v1", "lr": "lr_tiny_v1"})
    assert [(r["rank"], r["algorithm"], r["model"]) for r in rows] == [
        (1, "lr", "lr_tiny_v1"),
        (2, "rf", "rf_tiny_v1"),
    ]
    assert rows[0]["roc_auc"] == 0.75  # the leaderboard's score
    assert set(METRICS) | {"n_test"} <= set(rows[1])


class _Resources(HTMLParser):
    """Tags and the src/href of every element of a page: what a browser would fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.links += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "data")]


def assert_self_contained(page: str) -> None:
    """No external resource: images are data URIs, links are anchors, no script or link tag."""
    parsed = _Resources()
    parsed.feed(page)
    parsed.close()
    assert "http://" not in page and "https://" not in page
    assert not parsed.tags & {"script", "link", "iframe", "object", "embed", "base"}
    for link in parsed.links:
        assert link.startswith(("data:image/png;base64,", "#")), link
    assert "url(" not in page and "@import" not in page  # nothing fetched from the CSS either


def tiny_section(figures=(("roc", "curves <b>&</b> more", b"\x89PNG fake"),)) -> report.Section:
    return report.Section(
        dataset="tiny",
        board=board(),
        metrics=all_metrics(),
        model_ids={"rf": "rf_tiny_v1", "lr": "lr_tiny_v1"},
        figures=list(figures),
    )


def test_report_html_is_self_contained_and_escaped() -> None:
    section = tiny_section()
    page = report.report_html([section], title="Report <x>")
    assert page.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64,iVBORyBmYWtl" in page
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "<script" not in page
    assert_self_contained(page)
    assert "Report &lt;x&gt;" in page and "curves &lt;b&gt;&amp;&lt;/b&gt; more" in page
    assert "<title>Report &lt;x&gt;</title>" in page and "<style>" in page  # CSS inline
    assert "<td>lr_tiny_v1</td>" in page and "<td>rf_tiny_v1</td>" in page
    assert '<tr class="best"><td class="num">1</td><td>lr ★</td>' in page
    assert page.count("★") == 1 and page.count('<tr class="best">') == 1
    assert page == report.report_html([section], title="Report <x>")  # no timestamp


def test_report_html_table_summary_and_figures() -> None:
    page = report.report_html([tiny_section()], title="Model report: tiny")
    # The ranking metric's column is outlined; higher-is-better metrics get an up arrow,
    # losses a down arrow; long names may wrap at the underscore.
    assert '<th class="num key">roc_<wbr>auc ↑</th>' in page
    assert '<th class="num">balanced_<wbr>accuracy ↑</th>' in page
    assert '<th class="num">log_<wbr>loss ↓</th>' in page
    assert '<th class="num">n_<wbr>test</th>' in page
    assert '<td class="num key">0.7500</td>' in page  # the leaderboard's score, 4 decimals
    assert '<td class="num">50</td>' in page  # n_test as a count
    assert (
        '<li><a href="#tiny">tiny</a>: best lr_tiny_v1 (roc_auc 0.7500, higher is better)</li>'
        in page
    )
    assert "Best model: <strong>lr_tiny_v1</strong> (roc_auc = 0.7500, higher is better)" in page
    assert '<section id="tiny">' in page and '<figure id="tiny-roc">' in page
    assert 'alt="tiny: roc"' in page and "<figcaption><strong>roc</strong>: " in page
    assert page.endswith("</html>\n")


def test_report_html_is_byte_identical_across_environments_and_runs() -> None:
    sections = [tiny_section(), tiny_section([("pr", "precision", b"\x89PNG other")])]
    first = report.report_html(sections, title="Model report: tiny")
    report._environment.cache_clear()  # a fresh jinja2 environment, as in a new process
    assert report.report_html(sections, title="Model report: tiny").encode() == first.encode()
    assert_self_contained(first)


def test_report_html_without_sections_says_so() -> None:
    page = report.report_html([])
    assert "<title>Model report</title>" in page and "No dataset to report." in page
    assert "<nav>" not in page and "<section" not in page
    assert_self_contained(page)


def test_report_template_ships_inside_the_package() -> None:
    # Loaded with jinja2.PackageLoader("tabml", "templates"): it must be package data, not a
    # file beside the repository, so a wheel renders the same page.
    template = resources.files("tabml").joinpath("templates", report.TEMPLATE)
    assert template.is_file()
    assert "<script" not in template.read_text(encoding="utf-8")


def test_leaderboard_rows_refuse_a_ranked_model_without_test_metrics() -> None:
    metrics = {"rf": metrics_of()}  # lr is ranked but has no metrics/test JSON
    with pytest.raises(DataError, match="ranks 'lr' but it has no test metrics: rerun evaluate"):
        report.leaderboard_rows(board(), metrics, {"rf": "rf_tiny_v1", "lr": "lr_tiny_v1"})
    with pytest.raises(DataError, match="rerun evaluate"):
        report.report_html([report.Section("tiny", board(), metrics, {}, [])])


def test_ranked_models_come_from_the_leaderboard_and_refuse_stale_ones() -> None:
    ids = ranked_models("tiny", board(), ALGOS)
    assert ids == {"rf": "rf_tiny_v1", "lr": "lr_tiny_v1"}
    with pytest.raises(DataError, match="rerun evaluate"):
        ranked_models("tiny", board(), ("rf", "lr", "xgb"))
    stale = {k: v for k, v in board().items() if k != "models"}  # written before "models"
    with pytest.raises(DataError, match="has no 'models': rerun evaluate"):
        ranked_models("tiny", stale, ALGOS)


def test_captions_have_one_home_and_fill_in_the_dataset() -> None:
    assert set(report.CAPTIONS) == set(report.FIGURE_TOPICS)
    text = report.caption("balance", "y", "yes", "roc_auc")
    assert text.startswith("Rows per class of the target column 'y'")
    assert "the positive class is 'yes'" in text
    assert "drop in log_loss" in report.caption("importance", "y", "yes", "log_loss")
    assert "evaluate.importance_rows" in report.caption("importance", "y", "yes", "roc_auc")


# --- the stage --------------------------------------------------------------------------

DATASETS = ("tiny", "small")


def write_inputs(root: Path, *, loss: bool = False) -> Layout:
    """params.yaml with two datasets, and for each what evaluate and plot leave on disk:
    leaderboard, test metrics and one PNG per figure (fake bytes: the page embeds them)."""
    raw = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8")))
    raw["datasets"] = {
        name: {
            "source": f"{name}.csv",
            "target": "y",
            "positive_class": "yes",
            "snapshot": SNAPSHOT,
        }
        for name in DATASETS
    }
    raw["train"]["algos"] = list(ALGOS)
    text = yaml.safe_dump(raw, sort_keys=False)  # datasets in this order: tiny, then small
    (root / "params.yaml").write_text(text, encoding="utf-8")
    layout = Layout(root)
    for name in DATASETS:
        path = layout.leaderboard(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        models = {a: f"{a}_{name}_v1" for a in ALGOS}
        path.write_text(
            json.dumps({**board(), "best_model": f"lr_{name}_v1", "models": models}),
            encoding="utf-8",
        )
        for algo, metrics in all_metrics().items():
            path = layout.test_metrics(name, algo)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(metrics), encoding="utf-8")
        for topic in report.FIGURE_TOPICS:
            if topic in report.OPTIONAL_TOPICS and not loss:
                continue
            path = layout.figure(topic, name, SNAPSHOT)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"\x89PNG {name} {topic}".encode())
    return layout


def argv(root: Path) -> list[str]:
    return ["--params", str(root / "params.yaml"), "--root", str(root)]


def test_stage_builds_one_page_from_every_dataset_on_disk(tmp_path: Path) -> None:
    import base64

    layout = write_inputs(tmp_path)

    assert report_stage.main(argv(tmp_path)) == 0
    first = layout.report.read_bytes()
    assert report_stage.main(argv(tmp_path)) == 0

    assert layout.report.read_bytes() == first  # byte-identical across reruns
    page = first.decode("utf-8")
    assert_self_contained(page)
    assert "<title>Model report: tiny, small</title>" in page
    expected = [t for t in report.FIGURE_TOPICS if t not in report.OPTIONAL_TOPICS]
    assert page.count("data:image/png;base64,") == 2 * len(expected)
    for name in DATASETS:
        assert f'<section id="{name}">' in page and f"<td>rf_{name}_v1</td>" in page
        positions = [page.index(f'<figure id="{name}-{topic}">') for topic in expected]
        assert positions == sorted(positions)  # every figure in the report's order
        png = base64.b64encode(f"\x89PNG {name} roc".encode()).decode()
        assert f'<img src="data:image/png;base64,{png}" alt="{name}: roc">' in page
    assert page.index('<section id="tiny">') < page.index('<section id="small">')
    assert 'id="tiny-loss"' not in page
    assert "the positive class is &#39;yes&#39;" in page  # caption filled from params


def test_stage_shows_the_loss_figure_when_plot_drew_one(tmp_path: Path) -> None:
    layout = write_inputs(tmp_path, loss=True)
    assert report_stage.main(argv(tmp_path)) == 0
    page = layout.report.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2 * len(report.FIGURE_TOPICS)
    assert 'id="tiny-loss"' in page and "lowest validation loss" in page


def test_stage_missing_figure_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    layout = write_inputs(tmp_path)
    missing = layout.figure("roc", "small", SNAPSHOT)
    missing.unlink()

    assert report_stage.main(argv(tmp_path)) == 2

    err = capsys.readouterr().err
    assert err.strip() == f"error: {missing} does not exist: run `dvc repro plot@small` first"
    assert not layout.report.exists()


def test_stage_refuses_a_stale_leaderboard_or_missing_metrics(tmp_path: Path, capsys) -> None:
    layout = write_inputs(tmp_path)
    layout.test_metrics("small", "rf").unlink()
    assert report_stage.main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"error: {layout.test_metrics('small', 'rf')} does not exist" in err

    write_inputs(tmp_path)
    stale = {k: v for k, v in board().items() if k != "models"}
    layout.leaderboard("tiny").write_text(json.dumps(stale), encoding="utf-8")
    assert report_stage.main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "error: leaderboard of 'tiny' has no 'models': rerun evaluate" in err
    assert "Traceback" not in err and not layout.report.exists()


def test_importing_the_stage_loads_no_plotting_templating_or_params_library() -> None:
    code = "import json, sys, stages.report\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    loaded = {name.split(".")[0] for name in json.loads(out.splitlines()[-1])}
    assert not loaded & {"pandas", "numpy", "matplotlib", "jinja2", "pydantic", "yaml"}
