"""plot stage: figure builders, PNG bytes, HTML report, and one run on a tiny project."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from stages import plot
from stages.common import Layout
from stages.errors import DataError
from stages.params import METRICS

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
    fig = plot.balance_figure(tiny_frame(), "y", "yes", "tiny")
    (ax,) = fig.axes
    assert len(ax.patches) == 2
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["10 (50.0%)", "10 (50.0%)"]
    assert "tiny" in ax.get_title()
    assert ax.get_xlabel() == "y" and ax.get_ylabel() == "rows"


def test_balance_figure_counts_missing_labels_and_rejects_unknown_target() -> None:
    frame = tiny_frame()
    frame.loc[0, "y"] = None
    fig = plot.balance_figure(frame, "y", "yes", "tiny")
    assert len(fig.axes[0].patches) == 3  # no, yes, (missing)
    with pytest.raises(DataError, match="no target column"):
        plot.balance_figure(frame, "nope", "yes", "tiny")


def test_distributions_figure_one_axes_per_numeric_column() -> None:
    fig = plot.distributions_figure(tiny_frame(), "y", "yes", "tiny", max_columns=12)
    assert [ax.get_xlabel() for ax in fig.axes] == ["income", "age", "score"]
    capped = plot.distributions_figure(tiny_frame(), "y", "yes", "tiny", max_columns=2)
    assert len(capped.axes) == 2
    assert "first 2 of 3" in capped.texts[0].get_text()  # the suptitle


def test_distributions_figure_without_numeric_columns_is_a_message() -> None:
    frame = tiny_frame()[["color", "y"]]
    fig = plot.distributions_figure(frame, "y", "yes", "tiny")
    assert "no numeric columns" in [t.get_text() for t in fig.axes[0].texts]


def test_missing_figure_counts_per_column() -> None:
    fig = plot.missing_figure(tiny_frame(), "tiny")
    (ax,) = fig.axes
    widths = [p.get_width() for p in ax.patches]
    assert widths == [2, 0, 0, 0, 0]
    assert "2 cells" in ax.get_title()


def test_missing_figure_says_when_nothing_is_missing() -> None:
    fig = plot.missing_figure(tiny_frame().dropna(), "tiny")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "no missing values" in texts
    assert "no missing values" in fig.axes[0].get_title()


def test_correlations_figure_heatmap_with_colorbar() -> None:
    fig = plot.correlations_figure(tiny_frame(), "tiny", exclude=["y"])
    heatmap, colorbar = fig.axes
    assert [t.get_text() for t in heatmap.get_xticklabels()] == ["income", "age", "score"]
    assert colorbar.get_ylabel() == "Pearson r"
    assert "1.00" in [t.get_text() for t in heatmap.texts]


def test_correlations_figure_with_one_numeric_column_is_a_message() -> None:
    frame = tiny_frame()[["income", "color", "y"]]
    fig = plot.correlations_figure(frame, "tiny")
    (ax,) = fig.axes
    assert "1 numeric column: nothing to correlate" in [t.get_text() for t in ax.texts]


# --- model figures ----------------------------------------------------------------------


def test_curve_areas_match_sklearn_definitions() -> None:
    assert plot.roc_auc(roc_curve("perfect")) == pytest.approx(1.0)
    assert plot.roc_auc(roc_curve("chance")) == pytest.approx(0.5)
    assert plot.average_precision(pr_curve()) == pytest.approx(0.75)


def test_roc_figure_puts_every_algorithm_on_one_axes() -> None:
    fig = plot.roc_figure({"rf": roc_curve("perfect"), "lr": roc_curve("chance")}, "tiny")
    (ax,) = fig.axes
    assert len(ax.lines) == 3  # two models and the diagonal
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["rf (AUC 1.000)", "lr (AUC 0.500)"]


def test_roc_figure_rejects_plot_data_without_its_columns() -> None:
    with pytest.raises(DataError, match="no column 'tpr'"):
        plot.roc_figure({"rf": pd.DataFrame({"fpr": [0, 1]})}, "tiny")


def test_pr_and_calibration_figures_draw_all_algorithms() -> None:
    pr = plot.pr_figure({"rf": pr_curve(), "lr": pr_curve()}, "tiny")
    assert len(pr.axes) == 1 and len(pr.axes[0].lines) == 3  # two models and the prevalence
    cal = plot.calibration_figure({"rf": calibration_curve(), "lr": calibration_curve()}, "tiny")
    assert len(cal.axes[0].lines) == 3  # perfect line and two models


def test_metrics_figure_groups_bars_and_names_the_best_model() -> None:
    fig = plot.metrics_figure(all_metrics(), board(), "tiny")
    (ax,) = fig.axes
    assert len(ax.patches) == len(ALGOS) * len(METRICS)
    assert "lr_tiny_v1" in ax.get_title()
    assert "lr (best)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_importance_figure_one_subplot_per_algorithm_top_features() -> None:
    fig = plot.importance_figure(
        {"rf": importance_frame(), "lr": importance_frame(5)}, "tiny", "roc_auc"
    )
    assert [ax.get_title() for ax in fig.axes] == ["rf", "lr"]
    assert len(fig.axes[0].patches) == 15 and len(fig.axes[1].patches) == 5
    top = fig.axes[0].get_yticklabels()
    assert top[0].get_text() == "f19"  # most important first


def test_loss_figure_draws_train_solid_valid_dashed_per_algorithm() -> None:
    curves = {"xgb": loss_curve(best=6), "lgbm": loss_curve(n=8, best=2)}
    fig = plot.loss_figure(curves, "tiny", algos=("rf", "xgb", "lr"))
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
    fig = plot.loss_figure({}, "tiny")
    (ax,) = fig.axes
    assert "no model trains in rounds" in [t.get_text() for t in ax.texts]
    assert "tiny" in ax.get_title()
    with pytest.raises(DataError, match="no column 'valid_logloss'"):
        plot.loss_figure({"xgb": loss_curve().drop(columns="valid_logloss")}, "tiny")


def test_render_png_is_deterministic_and_untagged() -> None:
    pngs = [plot.render_png(plot.roc_figure({"rf": roc_curve()}, "tiny"), dpi=40) for _ in range(2)]
    assert pngs[0] == pngs[1]
    assert pngs[0].startswith(b"\x89PNG\r\n\x1a\n")
    assert b"Software" not in pngs[0] and b"matplotlib" not in pngs[0]


# --- report -----------------------------------------------------------------------------


def test_leaderboard_rows_follow_ranking_with_all_metrics() -> None:
    rows = plot.leaderboard_rows(board(), all_metrics(), {"rf": "rf_tiny_v1", "lr": "lr_tiny_v1"})
    assert [(r["rank"], r["algorithm"], r["model"]) for r in rows] == [
        (1, "lr", "lr_tiny_v1"),
        (2, "rf", "rf_tiny_v1"),
    ]
    assert rows[0]["roc_auc"] == 0.75  # the leaderboard's score
    assert set(METRICS) | {"n_test"} <= set(rows[1])


def test_report_html_is_self_contained_and_escaped() -> None:
    section = plot.Section(
        dataset="tiny",
        board=board(),
        metrics=all_metrics(),
        model_ids={"rf": "rf_tiny_v1", "lr": "lr_tiny_v1"},
        figures=[("roc", "curves <b>&</b> more", b"\x89PNG fake")],
    )
    page = plot.report_html([section], title="Report <x>")
    assert page.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64,iVBORyBmYWtl" in page
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "<script" not in page
    assert "Report &lt;x&gt;" in page and "curves &lt;b&gt;&amp;&lt;/b&gt; more" in page
    assert "<td>lr_tiny_v1</td>" in page and "<td>rf_tiny_v1</td>" in page
    assert '<tr class="best"><td class="num">1</td><td>lr ★</td>' in page
    assert page == plot.report_html([section], title="Report <x>")  # no timestamp


def test_model_ids_come_from_the_leaderboard_and_refuse_stale_ones() -> None:
    assert plot.model_ids("tiny", board(), ALGOS) == {"rf": "rf_tiny_v1", "lr": "lr_tiny_v1"}
    with pytest.raises(DataError, match="rerun evaluate"):
        plot.model_ids("tiny", board(), ("rf", "lr", "xgb"))
    stale = {k: v for k, v in board().items() if k != "models"}  # written before "models"
    with pytest.raises(DataError, match="has no 'models': rerun evaluate"):
        plot.model_ids("tiny", stale, ALGOS)


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
