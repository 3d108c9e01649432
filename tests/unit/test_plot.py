"""plot stage: figure builders (tabml.plots), PNG bytes, HTML report (tabml.report), and one
run of the stage on a tiny project whose inputs are written by hand (no upstream stage runs)."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from stages import plot
from tabml import report
from tabml.errors import DataError
from tabml.layout import Layout
from tabml.metrics import METRICS
from tabml.plots import compare, eda, render_png

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = "20251130"
ALGOS = ("rf", "lr")


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def tiny_frame(n: int = 20, seed: int = 0) -> pd.DataFrame:
    """20 rows: two numeric columns (one with NaN), an integer, a category, target y."""
    rng = np.random.default_rng(seed)
    y = np.array(["yes", "no"] * (n // 2), dtype=object)
    income = np.where(y == "yes", 30.0, 60.0) + rng.normal(0, 5, n)
    frame = pd.DataFrame(
        {
            "income": income,
            "age": rng.integers(20, 70, n),
            "score": rng.normal(size=n),
            "color": np.where(y == "yes", "red", "blue"),
            "y": y,
        }
    )
    frame.loc[[2, 5], "income"] = np.nan
    return frame


def roc_curve(kind: str = "perfect") -> pd.DataFrame:
    if kind == "perfect":
        return pd.DataFrame({"fpr": [0, 0, 1], "tpr": [0, 1, 1], "threshold": [1, 0.5, 0]})
    return pd.DataFrame({"fpr": [0, 0.5, 1], "tpr": [0, 0.5, 1], "threshold": [1, 0.5, 0]})


def pr_curve() -> pd.DataFrame:
    # sklearn order: recall descending to 0, last precision 1.
    return pd.DataFrame({"recall": [1.0, 0.5, 0.0], "precision": [0.5, 1.0, 1.0]})


def calibration_curve() -> pd.DataFrame:
    return pd.DataFrame({"mean_predicted": [0.1, 0.5, 0.9], "fraction_positive": [0.2, 0.5, 0.8]})


def importance_frame(n: int = 20) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "feature": [f"f{i}" for i in range(n)],
            "importance": np.linspace(-0.01, 0.2, n).round(6),
            "std": np.full(n, 0.01),
        }
    )


def loss_curve(n: int = 10, best: int = 6) -> pd.DataFrame:
    """Per-round losses as evaluate writes them: train falls, valid bottoms out at ``best``."""
    steps = np.arange(n)
    return pd.DataFrame(
        {
            "step": steps,
            "train_logloss": (0.7 - 0.05 * steps).round(6),
            "valid_logloss": (0.4 + 0.01 * (steps - best) ** 2).round(6),
        }
    )


def metrics_of(shift: float = 0.0) -> dict[str, float]:
    values = {m: round(0.7 + shift, 6) for m in METRICS}
    values.update(log_loss=0.45 - shift, brier=0.15 - shift, n_test=50)
    return values


def board(best: str = "lr", metric: str = "roc_auc") -> dict:
    other = [a for a in ALGOS if a != best]
    return {
        "metric": metric,
        "higher_is_better": True,
        "best_algo": best,
        "best_model": f"{best}_tiny_v1",
        "best_score": 0.75,
        "ranking": [best, *other],
        "scores": {best: 0.75, **{a: 0.7 for a in other}},
        "models": {a: f"{a}_tiny_v1" for a in ALGOS},
    }


def all_metrics() -> dict[str, dict[str, float]]:
    return {"rf": metrics_of(), "lr": metrics_of(0.05)}


# --- EDA figures ------------------------------------------------------------------------


def test_balance_figure_labels_counts_and_percent() -> None:
    fig = eda.balance_figure(tiny_frame(), "y", "yes", "tiny")
    (ax,) = fig.axes
    assert len(ax.patches) == 2
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["10 (50.0%)", "10 (50.0%)"]
    assert "tiny" in ax.get_title()
    assert ax.get_xlabel() == "y" and ax.get_ylabel() == "rows"


def test_balance_figure_counts_missing_labels_and_rejects_unknown_target() -> None:
    frame = tiny_frame()
    frame.loc[0, "y"] = None
    fig = eda.balance_figure(frame, "y", "yes", "tiny")
    assert len(fig.axes[0].patches) == 3  # no, yes, (missing)
    with pytest.raises(DataError, match="no target column"):
        eda.balance_figure(frame, "nope", "yes", "tiny")


def test_distributions_figure_one_axes_per_numeric_column() -> None:
    fig = eda.distributions_figure(tiny_frame(), "y", "yes", "tiny", max_columns=12)
    assert [ax.get_xlabel() for ax in fig.axes] == ["income", "age", "score"]
    capped = eda.distributions_figure(tiny_frame(), "y", "yes", "tiny", max_columns=2)
    assert len(capped.axes) == 2
    assert "first 2 of 3" in capped.texts[0].get_text()  # the suptitle


def test_distributions_figure_without_numeric_columns_is_a_message() -> None:
    frame = tiny_frame()[["color", "y"]]
    fig = eda.distributions_figure(frame, "y", "yes", "tiny")
    assert "no numeric columns" in [t.get_text() for t in fig.axes[0].texts]


def test_missing_figure_counts_per_column() -> None:
    fig = eda.missing_figure(tiny_frame(), "tiny")
    (ax,) = fig.axes
    widths = [p.get_width() for p in ax.patches]
    assert widths == [2, 0, 0, 0, 0]
    assert "2 cells" in ax.get_title()


def test_missing_figure_says_when_nothing_is_missing() -> None:
    fig = eda.missing_figure(tiny_frame().dropna(), "tiny")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "no missing values" in texts
    assert "no missing values" in fig.axes[0].get_title()


def test_correlations_figure_heatmap_with_colorbar() -> None:
    fig = eda.correlations_figure(tiny_frame(), "tiny", exclude=["y"])
    heatmap, colorbar = fig.axes
    assert [t.get_text() for t in heatmap.get_xticklabels()] == ["income", "age", "score"]
    assert colorbar.get_ylabel() == "Pearson r"
    assert "1.00" in [t.get_text() for t in heatmap.texts]


def test_correlations_figure_with_one_numeric_column_is_a_message() -> None:
    frame = tiny_frame()[["income", "color", "y"]]
    fig = eda.correlations_figure(frame, "tiny")
    (ax,) = fig.axes
    assert "1 numeric column: nothing to correlate" in [t.get_text() for t in ax.texts]


# --- model figures ----------------------------------------------------------------------


def auc_metrics(**by_algo: tuple[float, float]) -> dict[str, dict[str, float]]:
    """Test metrics per algorithm with the given (roc_auc, pr_auc), the rest as metrics_of()."""
    return {
        algo: {**metrics_of(), "roc_auc": roc, "pr_auc": ap} for algo, (roc, ap) in by_algo.items()
    }


def legend_texts(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_roc_figure_puts_every_algorithm_on_one_axes() -> None:
    curves = {"rf": roc_curve("perfect"), "lr": roc_curve("chance")}
    fig = compare.roc_figure(curves, auc_metrics(rf=(1.0, 1.0), lr=(0.5, 0.5)), "tiny")
    (ax,) = fig.axes
    assert len(ax.lines) == 3  # two models and the diagonal
    assert legend_texts(fig)[:2] == ["rf (AUC 1.000)", "lr (AUC 0.500)"]


def test_roc_and_pr_legends_show_the_test_metrics_not_the_curve_areas() -> None:
    # The curves' own areas are 1.0 (ROC) and 0.75 (AP): the legends must not show those.
    metrics = auc_metrics(rf=(0.8123, 0.4321), lr=(0.6047, 0.2468))
    roc = compare.roc_figure({"rf": roc_curve("perfect"), "lr": roc_curve("perfect")}, metrics, "t")
    assert legend_texts(roc)[:2] == ["rf (AUC 0.812)", "lr (AUC 0.605)"]
    pr = compare.pr_figure({"rf": pr_curve(), "lr": pr_curve()}, metrics, "t")
    assert legend_texts(pr)[:2] == ["rf (AP 0.432)", "lr (AP 0.247)"]
    # Only the models that have curves are drawn; extra metrics are ignored.
    alone = compare.roc_figure({"lr": roc_curve()}, metrics, "t")
    assert legend_texts(alone) == ["lr (AUC 0.605)", "chance"]


def test_roc_and_pr_figures_refuse_missing_or_stale_test_metrics() -> None:
    stale = {"rf": {k: v for k, v in metrics_of().items() if k not in ("roc_auc", "pr_auc")}}
    with pytest.raises(
        DataError, match=r"test metrics of tiny-rf have no 'roc_auc': rerun evaluate"
    ):
        compare.roc_figure({"rf": roc_curve()}, stale, "tiny")
    with pytest.raises(
        DataError, match=r"test metrics of tiny-rf have no 'pr_auc': rerun evaluate"
    ):
        compare.pr_figure({"rf": pr_curve()}, stale, "tiny")
    with pytest.raises(DataError, match=r"test metrics of tiny-lr have no 'roc_auc'"):
        compare.roc_figure({"lr": roc_curve()}, all_metrics() | {"lr": {}}, "tiny")
    with pytest.raises(DataError, match=r"tiny-rf have no 'pr_auc'"):
        compare.pr_figure({"rf": pr_curve()}, {"rf": {"pr_auc": "0.7"}}, "tiny")  # not a number


def test_roc_figure_rejects_plot_data_without_its_columns() -> None:
    with pytest.raises(DataError, match="no column 'tpr'"):
        compare.roc_figure({"rf": pd.DataFrame({"fpr": [0, 1]})}, all_metrics(), "tiny")
    with pytest.raises(DataError, match="pr data of tiny-rf has no column 'precision'"):
        compare.pr_figure({"rf": pd.DataFrame({"recall": [0, 1]})}, all_metrics(), "tiny")


def test_pr_and_calibration_figures_draw_all_algorithms() -> None:
    pr = compare.pr_figure({"rf": pr_curve(), "lr": pr_curve()}, all_metrics(), "tiny")
    assert len(pr.axes) == 1 and len(pr.axes[0].lines) == 3  # two models and the prevalence
    cal = compare.calibration_figure({"rf": calibration_curve(), "lr": calibration_curve()}, "tiny")
    assert len(cal.axes[0].lines) == 3  # perfect line and two models


def test_metrics_figure_groups_bars_and_names_the_best_model() -> None:
    fig = compare.metrics_figure(all_metrics(), board(), "tiny")
    (ax,) = fig.axes
    assert len(ax.patches) == len(ALGOS) * len(METRICS)
    assert "lr_tiny_v1" in ax.get_title()
    assert "lr (best)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_importance_figure_one_subplot_per_algorithm_top_features() -> None:
    fig = compare.importance_figure(
        {"rf": importance_frame(), "lr": importance_frame(5)}, "tiny", "roc_auc"
    )
    assert [ax.get_title() for ax in fig.axes] == ["rf", "lr"]
    assert len(fig.axes[0].patches) == 15 and len(fig.axes[1].patches) == 5
    top = fig.axes[0].get_yticklabels()
    assert top[0].get_text() == "f19"  # most important first


def test_loss_figure_draws_train_solid_valid_dashed_per_algorithm() -> None:
    curves = {"xgb": loss_curve(best=6), "lgbm": loss_curve(n=8, best=2)}
    fig = compare.loss_figure(curves, "tiny", algos=("rf", "xgb", "lr"))
    (ax,) = fig.axes
    assert len(ax.lines) == 4  # train and valid for each model
    assert [line.get_label() for line in ax.lines] == [
        "xgb train",
        "xgb valid",
        "lgbm train",
        "lgbm valid",
    ]
    assert [line.get_linestyle() for line in ax.lines] == ["-", "--", "-", "--"]
    colors = [line.get_color() for line in ax.lines]
    assert colors == ["C1", "C1", "C3", "C3"]  # xgb keeps its train.algos colour
    markers = [c.get_offsets().tolist() for c in ax.collections]
    assert markers == [[[6.0, 0.4]], [[2.0, 0.4]]]  # lowest validation loss per model
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "xgb best round 6 (0.4000)" in legend
    assert "tiny" in ax.get_title()
    assert ax.get_xlabel() == "boosting round" and ax.get_ylabel() == "log loss"


def test_loss_figure_without_curves_is_a_message_and_checks_columns() -> None:
    fig = compare.loss_figure({}, "tiny")
    (ax,) = fig.axes
    assert "no model trains in rounds" in [t.get_text() for t in ax.texts]
    assert "tiny" in ax.get_title()
    with pytest.raises(DataError, match="no column 'valid_logloss'"):
        compare.loss_figure({"xgb": loss_curve().drop(columns="valid_logloss")}, "tiny")


def test_render_png_is_deterministic_and_untagged() -> None:
    pngs = [
        render_png(compare.roc_figure({"rf": roc_curve()}, all_metrics(), "tiny"), dpi=40)
        for _ in range(2)
    ]
    assert pngs[0] == pngs[1]
    assert pngs[0].startswith(b"\x89PNG\r\n\x1a\n")
    assert b"Software" not in pngs[0] and b"matplotlib" not in pngs[0]


# --- report -----------------------------------------------------------------------------


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


def test_model_ids_come_from_the_leaderboard_and_refuse_stale_ones() -> None:
    assert report.model_ids("tiny", board(), ALGOS) == {"rf": "rf_tiny_v1", "lr": "lr_tiny_v1"}
    with pytest.raises(DataError, match="rerun evaluate"):
        report.model_ids("tiny", board(), ("rf", "lr", "xgb"))
    stale = {k: v for k, v in board().items() if k != "models"}  # written before "models"
    with pytest.raises(DataError, match="has no 'models': rerun evaluate"):
        report.model_ids("tiny", stale, ALGOS)


# --- the stage --------------------------------------------------------------------------


def write_project(root: Path) -> Layout:
    """params.yaml and every input of plot for one dataset ``tiny`` with algos rf and lr."""
    raw = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8")))
    raw["datasets"] = {
        "tiny": {"source": "src.csv", "target": "y", "positive_class": "yes", "snapshot": SNAPSHOT}
    }
    raw["train"]["algos"] = list(ALGOS)
    raw["plot"] = {"dpi": 40, "max_numeric_columns": 2}
    (root / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    layout = Layout(root)
    paths = [layout.raw("tiny", SNAPSHOT), layout.leaderboard("tiny")]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    tiny_frame().to_csv(paths[0], index=False)
    paths[1].write_text(json.dumps(board()), encoding="utf-8")
    data = {
        "roc": roc_curve(),
        "pr": pr_curve(),
        "calibration": calibration_curve(),
        "importance": importance_frame(),
    }
    for algo, metrics in all_metrics().items():
        path = layout.test_metrics("tiny", algo)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics), encoding="utf-8")
        for topic, frame in data.items():
            path = layout.plot_data(topic, "tiny", algo, SNAPSHOT)
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
    return layout


def digests(layout: Layout) -> dict[str, str]:
    files = [*sorted(layout.figures_dir.iterdir()), layout.report]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_stage_writes_every_figure_and_the_report_byte_identically(tmp_path: Path) -> None:
    layout = write_project(tmp_path)
    stale = layout.figure("old", "tiny", SNAPSHOT)
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    argv = ["--params", str(tmp_path / "params.yaml"), "--root", str(tmp_path)]

    assert plot.main(argv) == 0
    first = digests(layout)
    assert plot.main(argv) == 0

    assert digests(layout) == first
    assert not stale.exists()
    expected = [t for t in plot.TOPICS if t not in plot.OPTIONAL_TOPICS]  # no loss data
    assert sorted(p.name for p in layout.figures_dir.iterdir()) == sorted(
        layout.figure(topic, "tiny", SNAPSHOT).name for topic in expected
    )
    assert not layout.figure("loss", "tiny", SNAPSHOT).exists()
    page = layout.report.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == len(expected)
    assert 'id="tiny-loss"' not in page
    assert_self_contained(page)
    for topic in expected:  # every figure with its caption, in TOPICS order
        assert f'<figure id="tiny-{topic}">' in page
    positions = [page.index(f'<figure id="tiny-{topic}">') for topic in expected]
    assert positions == sorted(positions)
    assert "the positive class is &#39;yes&#39;" in page  # caption filled from params


def test_stage_writes_the_loss_figure_when_a_model_has_loss_data(tmp_path: Path) -> None:
    layout = write_project(tmp_path)
    path = layout.plot_data("loss", "tiny", "rf", SNAPSHOT)  # as if rf trained in rounds
    path.parent.mkdir(parents=True, exist_ok=True)
    loss_curve().to_csv(path, index=False)
    argv = ["--params", str(tmp_path / "params.yaml"), "--root", str(tmp_path)]

    assert plot.main(argv) == 0
    first = digests(layout)
    assert plot.main(argv) == 0

    assert digests(layout) == first
    assert sorted(p.name for p in layout.figures_dir.iterdir()) == sorted(
        layout.figure(topic, "tiny", SNAPSHOT).name for topic in plot.TOPICS
    )
    page = layout.report.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == len(plot.TOPICS)
    assert 'id="tiny-loss"' in page and "lowest validation loss" in page


def test_stage_missing_input_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    layout = write_project(tmp_path)
    layout.leaderboard("tiny").unlink()
    argv = ["--params", str(tmp_path / "params.yaml"), "--root", str(tmp_path)]
    assert plot.main(argv) == 2
    assert "leaderboard" in capsys.readouterr().err
    assert not layout.report.exists()


def test_stage_refuses_test_metrics_without_roc_auc(tmp_path: Path, capsys) -> None:
    layout = write_project(tmp_path)
    path = layout.test_metrics("tiny", "rf")
    stale = {k: v for k, v in metrics_of().items() if k != "roc_auc"}
    path.write_text(json.dumps(stale), encoding="utf-8")
    argv = ["--params", str(tmp_path / "params.yaml"), "--root", str(tmp_path)]
    assert plot.main(argv) == 2
    err = capsys.readouterr().err
    assert "test metrics of tiny-rf have no 'roc_auc': rerun evaluate" in err
    assert len(err.strip().splitlines()) == 1
    assert not layout.report.exists() and not layout.figures_dir.exists()


def test_stage_refuses_plot_data_without_its_columns(tmp_path: Path, capsys) -> None:
    layout = write_project(tmp_path)
    path = layout.plot_data("calibration", "tiny", "lr", SNAPSHOT)
    calibration_curve().drop(columns="fraction_positive").to_csv(path, index=False)
    argv = ["--params", str(tmp_path / "params.yaml"), "--root", str(tmp_path)]
    assert plot.main(argv) == 2
    err = capsys.readouterr().err
    assert "calibration data of tiny-lr has no column 'fraction_positive': rerun evaluate" in err
    assert not layout.report.exists()


def test_importing_the_stage_loads_no_plotting_templating_or_params_library() -> None:
    code = "import json, sys, stages.plot\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    loaded = {name.split(".")[0] for name in json.loads(out.splitlines()[-1])}
    assert not loaded & {"pandas", "numpy", "matplotlib", "jinja2", "pydantic", "yaml"}
