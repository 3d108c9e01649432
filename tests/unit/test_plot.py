"""plot stage: figure builders (tabml.plots), PNG bytes, the EDA sample, and runs of the
per-dataset stage on a tiny project whose inputs are written by hand (no upstream stage runs).
The report page and its stage are tested in test_report.py."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from stages import plot
from tabml.errors import DataError
from tabml.evaluation import TOPICS as PLOT_DATA_TOPICS
from tabml.layout import Layout
from tabml.metrics import METRICS
from tabml.params import load_params
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


def board(champion: str | None = "lr", metric: str = "roc_auc") -> dict:
    """A leaderboard as evaluate writes it (tabml.evaluation.BOARD_KEYS): ranked by CV mean,
    ``champion`` first (``None``: no model passed the gate, ``lr`` still ranks first)."""
    first = champion or "lr"
    other = [a for a in ALGOS if a != first]
    score = {first: 0.75, **{a: 0.7 for a in other}}
    return {
        "metric": metric,
        "higher_is_better": True,
        "cv_folds": 5,
        "rule": "best CV mean; a simpler model (lr < xgb < rf) within one standard error "
        "of it wins",
        "min_score": None if champion else 0.8,
        "champion": champion,
        "champion_model": f"{champion}_tiny_v1" if champion else None,
        "reason": f"{first} has the best CV {metric}"
        if champion
        else f"gate: best CV {metric} 0.75 < evaluate.min_score 0.8",
        "ranking": [first, *other],
        "models": {
            a: {
                "model_id": f"{a}_tiny_v1",
                "cv_mean": score[a],
                "cv_std": 0.01,
                "cv_se": 0.0045,
                "test": score[a],
                "test_low": score[a] - 0.03,
                "test_high": score[a] + 0.03,
                "threshold": 0.5,
                "threshold_rule": "fixed: evaluate.threshold",
                "calibration": "none",
            }
            for a in ALGOS
        },
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


def kinds_frame() -> pd.DataFrame:
    """40 rows, target y (20 yes): a column of every kind the two EDA figures split between
    them. ``plan`` follows y closely, ``opt`` less, ``flag`` a little, ``two`` and ``active``
    not at all."""
    y = np.array(["yes", "no"] * 20, dtype=object)
    yes = y == "yes"
    plan = np.where(yes, "monthly", "yearly").astype(object)
    plan[:4] = "weekly"  # 2 yes, 2 no
    flag = np.where(np.arange(40) < 24, 1, 0)  # rows 0-23: 12 yes; rows 24-39: 8 yes
    flag[[1, 3, 5, 7]] = 0  # 4 no rows move to flag 0: 1 is 12 yes of 20, 0 is 8 yes of 20
    opt = np.where(np.arange(40) % 4 == 0, "Yes", "No").astype(object)  # Yes: all yes rows
    opt[[10, 11]] = None
    return pd.DataFrame(
        {
            "income": np.linspace(10.0, 90.0, 40),
            "age": np.arange(20, 60),
            "plan": plan,
            "flag": flag,
            "two": np.tile([1.5, 1.5, 2.5, 2.5], 10),
            "active": [True, False, False, True] * 10,
            "opt": opt,
            "y": y,
        }
    )


def test_bar_columns_are_text_or_two_valued_the_rest_are_histograms() -> None:
    frame = kinds_frame()

    bars = eda.bar_columns(frame, exclude=["y"])
    histograms = eda.histogram_columns(frame, exclude=["y"])

    assert bars == ["plan", "flag", "two", "active", "opt"]  # frame order
    assert histograms == ["income", "age"]
    assert eda.bar_columns(frame)[-1] == "y"  # a two-valued target too: figures exclude it
    # a text column with one value, and a numeric one with a single value plus blanks
    constant = pd.DataFrame({"c": ["a"] * 5, "n": [1.0, np.nan, 1.0, 1.0, np.nan]})
    assert eda.bar_columns(constant) == ["c", "n"] and eda.histogram_columns(constant) == []


def test_distributions_figure_leaves_two_valued_columns_to_the_bars() -> None:
    fig = eda.distributions_figure(kinds_frame(), "y", "yes", "tiny")

    assert [ax.get_xlabel() for ax in fig.axes] == ["income", "age"]
    only_flags = kinds_frame()[["flag", "two", "plan", "y"]]
    message = eda.distributions_figure(only_flags, "y", "yes", "tiny")
    assert [t.get_text() for t in message.axes[0].texts] == [
        "no numeric columns with more than two values (two-valued ones are in the "
        "categorical figure)"
    ]


def test_level_table_counts_shares_and_positive_rates_with_other_and_missing() -> None:
    values = pd.Series(["a"] * 5 + ["b"] * 3 + ["c", "c", "d"] + [None, " "])
    positive = pd.Series([1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1]).astype(bool)  # a b other miss

    table = eda.level_table(values, positive, max_levels=3)

    assert table["level"].tolist() == ["a", "b", "other (2 levels)", "(missing)"]
    assert table["rows"].tolist() == [5, 3, 3, 2]
    assert table["share"].round(4).tolist() == [0.3846, 0.2308, 0.2308, 0.1538]
    assert table["positive_rate"].round(4).tolist() == [0.6, 0.0, 0.6667, 1.0]
    # everything fits: no other group; ties in frequency by name; 1.0 and 1 are one level
    small = eda.level_table(pd.Series([1.0, 0, 1, 0]), pd.Series([True, False, True, True]), 15)
    assert small["level"].tolist() == ["0", "1"] and small["positive_rate"].tolist() == [0.5, 1.0]


def test_association_is_bias_corrected_cramers_v_of_the_level_table() -> None:
    def v(values: list[str], positive: list[int]) -> float:
        table = eda.level_table(pd.Series(values), pd.Series(positive).astype(bool), 15)
        return eda.association(table)

    assert v(["a", "a", "b", "b"], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert v(["a", "b", "a", "b"], [1, 1, 0, 0]) == pytest.approx(0.0)
    # chi2 / n of [[3, 1], [1, 3]] is 2 / 8; less the bias 1 / 7, over 1 - 1 / 7: V^2 = 1 / 8
    assert v(["a"] * 4 + ["b"] * 4, [1, 1, 1, 0, 1, 0, 0, 0]) == pytest.approx(0.125**0.5)
    assert v(["a", "b"], [1, 1]) == 0.0  # one class: nothing to associate
    # An id: 14 one-row levels (each all positive or all negative) and "other"; plain
    # Cramer's V would be 0.59 and rank it above real signals.
    ids = [f"id{i}" for i in range(40)]
    assert v(ids, [1, 0] * 20) == 0.0


def categorical_panels(fig) -> list:
    """The panels of a categorical figure (not its legend-only or removed axes)."""
    return [ax for ax in fig.axes if ax.patches]


def test_categorical_figure_one_panel_per_column_ordered_by_association() -> None:
    fig = eda.categorical_figure(kinds_frame(), "y", "yes", "tiny")

    panels = categorical_panels(fig)
    titles = [ax.get_title() for ax in panels]
    assert [t.split(" ")[0] for t in titles] == ["plan", "opt", "flag", "two", "active"]
    assert titles[:3] == ["plan (V 0.93)", "opt (V 0.54)", "flag (V 0.12)"]
    assert all(ax.get_xlim() == (0.0, 1.0) for ax in panels)  # one scale: shares and rates
    plan = panels[0]
    labels = [t.get_text() for t in plan.get_yticklabels()]
    assert labels == ["monthly (18)", "yearly (18)", "weekly (4)"]
    assert [round(p.get_width(), 3) for p in plan.patches] == [0.45, 0.45, 0.1]  # shares
    (rates,) = plan.collections
    assert rates.get_offsets()[:, 0].tolist() == [1.0, 0.0, 0.5]  # positive rate per level
    dashed = [line for line in plan.lines if line.get_linestyle() == "--"]
    assert [line.get_xdata()[0] for line in dashed] == [0.5]  # the overall positive rate
    opt = panels[1]
    labels = [t.get_text() for t in opt.get_yticklabels()]
    assert labels == ["No (28)", "Yes (10)", "(missing) (2)"]
    assert fig.get_suptitle() == "tiny: categorical and two-valued columns by y"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["share of rows", "positive rate (y = 'yes')", "overall positive rate (50.0%)"]


def test_categorical_figure_caps_columns_and_levels() -> None:
    frame = kinds_frame()
    frame["city"] = [f"c{i // 2 % 6}" for i in range(40)]  # 6 levels: 8, 8, 6, 6, 6, 6 rows

    fig = eda.categorical_figure(frame, "y", "yes", "tiny", max_columns=2, max_levels=3)

    panels = categorical_panels(fig)
    assert [ax.get_title().split(" ")[0] for ax in panels] == ["plan", "opt"]
    assert "2 of 6 columns, the most associated with y" in fig.get_suptitle()
    alone = eda.categorical_figure(frame[["city", "y"]], "y", "yes", "tiny", max_levels=3)
    labels = [t.get_text() for t in categorical_panels(alone)[0].get_yticklabels()]
    assert labels == ["c0 (8)", "c1 (8)", "other (4 levels) (24)"]


def test_categorical_figure_without_such_columns_is_a_message() -> None:
    frame = kinds_frame()[["income", "age", "y"]]
    fig = eda.categorical_figure(frame, "y", "yes", "tiny")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == ["no categorical or two-valued columns"]
    assert ax.get_title() == "tiny: categorical and two-valued columns by y"


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


def test_roc_and_pr_figures_draw_exactly_the_kept_points_joined_by_lines() -> None:
    # evaluate keeps the points that shape the curve (tabml.evaluation.downsample): drawn as
    # steps, sparse points would turn into stairs; the lines go through them and nothing else
    pr = pd.DataFrame({"recall": [1.0, 0.8, 0.3, 0.0], "precision": [0.25, 0.5, 0.9, 1.0]})
    roc = pd.DataFrame({"fpr": [0.0, 0.1, 0.5, 1.0], "tpr": [0.0, 0.6, 0.9, 1.0]})

    pr_line = compare.pr_figure({"rf": pr}, all_metrics(), "tiny").axes[0].lines[0]
    roc_line = compare.roc_figure({"rf": roc}, all_metrics(), "tiny").axes[0].lines[0]

    assert pr_line.get_drawstyle() == "default" and roc_line.get_drawstyle() == "default"
    assert pr_line.get_xydata().tolist() == pr.to_numpy().tolist()
    assert roc_line.get_xydata().tolist() == roc[["fpr", "tpr"]].to_numpy().tolist()


def test_metrics_figure_groups_bars_and_outlines_the_champion() -> None:
    fig = compare.metrics_figure(all_metrics(), board(), "tiny")
    (ax,) = fig.axes
    assert len(ax.patches) == len(ALGOS) * len(METRICS)
    assert ax.get_title() == "tiny: test metrics per model (champion by CV roc_auc: lr_tiny_v1)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["rf", "lr (champion)"]
    widths = [p.get_linewidth() for p in ax.patches]
    assert widths == [0.5] * len(METRICS) + [1.5] * len(METRICS)  # lr's bars outlined


def test_metrics_figure_says_when_there_is_no_champion() -> None:
    # keys of the test metrics that are not metrics (threshold, ci95) are not drawn
    ci95 = {"roc_auc": {"low": 0.6, "high": 0.8}}
    metrics = {a: {**m, "threshold": 0.3, "ci95": ci95} for a, m in all_metrics().items()}
    fig = compare.metrics_figure(metrics, board(champion=None), "tiny")
    (ax,) = fig.axes
    assert len(ax.patches) == len(ALGOS) * len(METRICS)
    assert ax.get_title() == "tiny: test metrics per model (no champion)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["rf", "lr"]
    assert {p.get_linewidth() for p in ax.patches} == {0.5}


def importance_of(values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"feature": list(values), "importance": list(values.values()), "std": 0.01})


def test_importance_panels_share_one_axis_and_one_feature_order() -> None:
    rf = importance_of({"a": 0.30, "b": 0.10, "c": 0.05, "d": 0.0})
    lr = importance_of({"d": -0.01, "c": 0.01, "b": 0.20, "a": 0.02})

    fig = compare.importance_figure({"rf": rf, "lr": lr}, "tiny", "roc_auc", top=3)

    assert [ax.get_title() for ax in fig.axes] == ["rf", "lr"]
    # the top 3 by mean over the models (a 0.16, b 0.15, c 0.03), in the same rows
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
        assert ax.get_xlim() == fig.axes[0].get_xlim()  # equal bars mean equal drops
    assert [round(p.get_width(), 2) for p in fig.axes[0].patches] == [0.30, 0.10, 0.05]
    assert [round(p.get_width(), 2) for p in fig.axes[1].patches] == [0.02, 0.20, 0.01]
    assert fig.axes[1].get_xlim()[1] >= 0.31  # rf's longest bar fits lr's axis too
    assert fig.get_suptitle() == (
        "tiny: permutation importance = drop in test roc_auc when the column is shuffled\n"
        "(mean and std over repeats; top 3 of 4 columns by mean over the models)"
    )


def test_importance_figure_one_subplot_per_algorithm_top_features() -> None:
    # Since issue 10 every panel shows the same features, the top 15 by mean over the models
    # that have them: of lr's f0-f4 only f4 (mean 0.117) and f3 (0.085) are among them.
    fig = compare.importance_figure(
        {"rf": importance_frame(), "lr": importance_frame(5)}, "tiny", "roc_auc"
    )
    assert [ax.get_title() for ax in fig.axes] == ["rf", "lr"]
    assert len(fig.axes[0].patches) == 15 and len(fig.axes[1].patches) == 2
    top = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert top[0] == "f19"  # most important first
    assert "f4" in top and "f3" in top and "f5" not in top  # rf's f5 alone: 0.045
    assert [p.get_y() + p.get_height() / 2 for p in fig.axes[1].patches] == [
        top.index("f4"),
        top.index("f3"),
    ]


def confusion_data(
    tn: int = 40, fp: int = 10, fn: int = 5, tp: int = 45, classes: tuple = ("no", "yes")
) -> pd.DataFrame:
    """Confusion plot data as evaluate writes it: negative class first, 4 rows."""
    neg, pos = classes
    return pd.DataFrame(
        {
            "actual": [neg, neg, pos, pos],
            "predicted": [neg, pos, neg, pos],
            "count": [tn, fp, fn, tp],
        }
    )


def test_confusion_figure_one_panel_per_model_at_its_threshold() -> None:
    metrics = {"rf": {**metrics_of(), "threshold": 0.3712}, "lr": metrics_of()}  # lr: no key
    data = {"rf": confusion_data(), "lr": confusion_data(1162, 132, 206, 261)}

    fig = compare.confusion_figure(data, metrics, "tiny", "yes")

    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["rf (threshold 0.371)", "lr (threshold 0.5)"]
    cells = [t.get_text() for t in panels[0].texts]
    assert cells == ["40\n80.0%", "10\n20.0%", "5\n10.0%", "45\n90.0%"]
    assert [t.get_text() for t in panels[1].texts][:2] == ["1,162\n89.8%", "132\n10.2%"]
    rf = panels[0]
    assert [t.get_text() for t in rf.get_xticklabels()] == ["no", "yes\n(positive)"]
    assert [t.get_text() for t in rf.get_yticklabels()] == ["no", "yes\n(positive)"]
    assert (rf.get_xlabel(), rf.get_ylabel()) == ("predicted", "actual")
    assert rf.images[0].get_array().tolist() == [[0.8, 0.2], [0.1, 0.9]]  # row shares
    assert fig.get_suptitle() == "tiny: confusion matrices (test split, rows: actual class)"


def test_confusion_figure_puts_the_positive_class_last_as_params_spell_it() -> None:
    data = {"rf": confusion_data(classes=(1, 0))}  # 1 first in the file; params say "1.0"
    fig = compare.confusion_figure(data, {"rf": metrics_of()}, "tiny", "1.0")
    (ax,) = [ax for ax in fig.axes if ax.images]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1\n(positive)"]
    cells = [t.get_text() for t in ax.texts]
    assert cells == ["45\n90.0%", "5\n10.0%", "10\n20.0%", "40\n80.0%"]


def test_confusion_figure_refuses_bad_thresholds_and_data() -> None:
    bad = {"rf": {**metrics_of(), "threshold": "0.5"}}
    with pytest.raises(
        DataError,
        match=r"^test metrics of tiny-rf have a 'threshold' that is not a number: rerun evaluate$",
    ):
        compare.confusion_figure({"rf": confusion_data()}, bad, "tiny", "yes")
    with pytest.raises(DataError, match=r"^confusion data of tiny-rf has no column 'count'"):
        compare.check_plot_data("confusion", confusion_data().drop(columns="count"), "tiny", "rf")
    with pytest.raises(
        DataError,
        match=r"^confusion data of tiny-rf has a count that is not a whole number >= 0: "
        r"rerun evaluate$",
    ):
        compare.confusion_figure({"rf": confusion_data(tn=-1)}, all_metrics(), "tiny", "yes")


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


# --- the EDA sample -----------------------------------------------------------------------


def test_sample_rows_is_seeded_bounded_and_in_file_order() -> None:
    frame = tiny_frame(1000)

    sample = eda.sample_rows(frame, 100)

    assert len(sample) == 100 and sample.index.is_monotonic_increasing
    pd.testing.assert_frame_equal(sample, frame.loc[sample.index])  # rows as they were
    pd.testing.assert_frame_equal(eda.sample_rows(frame, 100), sample)  # same seed, same rows
    assert not eda.sample_rows(frame, 100, seed=1).index.equals(sample.index)
    assert eda.sample_rows(frame, 1000) is frame  # small enough: the whole snapshot


def test_label_text_is_as_text_converting_each_value_once() -> None:
    from tabml.schema import as_text

    labels = pd.Series([1.0, 1, "1", " ", None, np.nan, "yes", 0.5, "yes", 2], index=range(5, 15))

    got = eda.label_text(labels)

    pd.testing.assert_series_equal(got, as_text(labels))
    assert got.tolist()[:3] == ["1", "1", "1"] and pd.isna(got.iloc[3])  # blank: missing


def test_eda_titles_say_when_they_show_a_sample() -> None:
    frame = tiny_frame(1000)
    frame.loc[::10, "income"] = np.nan
    sample = eda.sample_rows(frame, 100)

    balance = eda.balance_figure(sample, "y", "yes", "tiny", total_rows=1000)
    assert balance.axes[0].get_title() == "tiny: class balance of y (sample of 100 of 1,000 rows)"
    whole = eda.balance_figure(sample, "y", "yes", "tiny", total_rows=100)
    assert whole.axes[0].get_title() == "tiny: class balance of y (100 rows)"
    missing = eda.missing_figure(sample, "tiny", total_rows=1000)
    assert missing.axes[0].get_title().endswith("cells in a sample of 100 of 1,000 rows)")
    dist = eda.distributions_figure(sample, "y", "yes", "tiny", 2, total_rows=1000)
    assert "(first 2 of 3; sample of 100 of 1,000 rows)" in dist.texts[0].get_text()
    corr = eda.correlations_figure(sample, "tiny", exclude=["y"], total_rows=1000)
    assert corr.axes[0].get_title().endswith("(sample of 100 of 1,000 rows)")
    bars = eda.categorical_figure(sample, "y", "yes", "tiny", total_rows=1000)
    assert bars.get_suptitle().endswith("(sample of 100 of 1,000 rows)")


def test_read_raw_sample_reads_at_most_eda_rows_without_dropped_columns(tmp_path: Path) -> None:
    from tabml.params import DatasetParams

    path = tmp_path / "raw.csv"
    tiny_frame(1000).to_csv(path, index=False)
    spec = DatasetParams(
        source="s.csv", target="y", positive_class="yes", snapshot=SNAPSHOT, drop_columns=["age"]
    )

    sample, total = plot.read_raw_sample(path, spec, 100)

    assert (len(sample), total) == (100, 1000)
    assert sample.columns.tolist() == ["income", "score", "color", "y"]
    again, _ = plot.read_raw_sample(path, spec, 100)
    pd.testing.assert_frame_equal(again, sample)
    whole, total = plot.read_raw_sample(path, spec, 5000)
    assert (len(whole), total) == (1000, 1000)


# --- the stage --------------------------------------------------------------------------


def stage_metrics() -> dict[str, dict]:
    """Test metrics as evaluate writes them: rf at an automatic threshold, lr from before
    thresholds were recorded (the figures say 0.5)."""
    metrics = all_metrics()
    metrics["rf"] |= {"threshold": 0.42, "ci95": {"roc_auc": {"low": 0.6, "high": 0.8}}}
    return metrics


def write_project(root: Path, rows: int = 20, eda_rows: int = 100_000) -> Layout:
    """params.yaml and every input of plot@tiny, with algos rf and lr."""
    raw = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8")))
    raw["datasets"] = {
        "tiny": {"source": "src.csv", "target": "y", "positive_class": "yes", "snapshot": SNAPSHOT}
    }
    raw["train"]["algos"] = list(ALGOS)
    raw["plot"] = {"dpi": 40, "max_numeric_columns": 2, "eda_rows": eda_rows}
    (root / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    layout = Layout(root)
    paths = [layout.raw("tiny", SNAPSHOT), layout.leaderboard("tiny")]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    tiny_frame(rows).to_csv(paths[0], index=False)
    paths[1].write_text(json.dumps(board()), encoding="utf-8")
    data = {
        "roc": roc_curve(),
        "pr": pr_curve(),
        "calibration": calibration_curve(),
        "importance": importance_frame(),
        "confusion": confusion_data(),
    }
    for algo, metrics in stage_metrics().items():
        path = layout.test_metrics("tiny", algo)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics), encoding="utf-8")
        for topic, frame in data.items():
            path = layout.plot_data(topic, "tiny", algo, SNAPSHOT)
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
    for topic in PLOT_DATA_TOPICS:  # evaluate leaves every topic directory, empty or not
        layout.plot_data_dir(topic, "tiny").mkdir(parents=True, exist_ok=True)
    return layout


def argv(root: Path, dataset: str = "tiny") -> list[str]:
    return ["--params", str(root / "params.yaml"), "--root", str(root), "--dataset", dataset]


def digests(layout: Layout) -> dict[str, str]:
    files = sorted(layout.figures_dir("tiny").iterdir())
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


# The figures of a dataset, in the order the report shows them (tabml.report.FIGURE_TOPICS).
FIGURE_TOPICS = eda.EDA_TOPICS + compare.MODEL_TOPICS


def test_figure_topics_have_captions_in_report_order() -> None:
    assert eda.EDA_TOPICS == ("balance", "distributions", "categorical", "missing", "correlations")
    assert compare.MODEL_TOPICS == (
        "roc",
        "pr",
        "calibration",
        "confusion",
        "metrics",
        "importance",
        "loss",
    )
    assert list(eda.CAPTIONS) == list(eda.EDA_TOPICS)
    assert list(compare.CAPTIONS) == list(compare.MODEL_TOPICS)


def test_stage_writes_every_figure_of_its_dataset_byte_identically(tmp_path: Path) -> None:
    layout = write_project(tmp_path, rows=1000, eda_rows=100)  # EDA of a seeded sample
    stale = layout.figure("old", "tiny", SNAPSHOT)
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    other = layout.figure("balance", "other", SNAPSHOT)  # another dataset's figure
    other.parent.mkdir(parents=True)
    other.write_bytes(b"other")

    assert plot.main(argv(tmp_path)) == 0
    first = digests(layout)
    assert plot.main(argv(tmp_path)) == 0

    assert digests(layout) == first
    assert not stale.exists()
    assert other.read_bytes() == b"other"  # plot@tiny writes plots/figures/tiny/ only
    expected = [t for t in FIGURE_TOPICS if t not in compare.OPTIONAL_TOPICS]  # no loss data
    assert sorted(p.name for p in layout.figures_dir("tiny").iterdir()) == sorted(
        layout.figure(topic, "tiny", SNAPSHOT).name for topic in expected
    )
    assert not layout.figure("loss", "tiny", SNAPSHOT).exists()
    assert not layout.report.exists()  # the page is the report stage's


def test_stage_draws_the_eda_from_the_sample_and_the_models_from_plot_data(
    tmp_path: Path,
) -> None:
    layout = write_project(tmp_path, rows=1000, eda_rows=100)
    params = load_params(tmp_path / "params.yaml")
    spec = params.datasets["tiny"]
    raw, total = plot.read_raw_sample(layout.raw("tiny", SNAPSHOT), spec, params.plot.eda_rows)
    metrics = stage_metrics()
    data = plot.read_plot_data(layout, "tiny", SNAPSHOT, ALGOS)

    figures = dict(plot.dataset_figures("tiny", spec, raw, metrics, board(), data, params, total))

    titles = {
        topic: fig.get_suptitle() or fig.axes[0].get_title() for topic, fig in figures.items()
    }
    assert list(titles) == [t for t in FIGURE_TOPICS if t != "loss"]
    for topic in eda.EDA_TOPICS:
        assert "sample of 100 of 1,000 rows" in titles[topic], topic
    assert titles["roc"] == "tiny: ROC curves (test split)"
    assert titles["categorical"].startswith("tiny: categorical and two-valued columns by y")
    assert [ax.get_title() for ax in figures["categorical"].axes if ax.patches] == [
        "color (V 1.00)"
    ]
    panels = [ax.get_title() for ax in figures["confusion"].axes if ax.images]
    assert panels == ["rf (threshold 0.42)", "lr (threshold 0.5)"]
    assert "champion by CV roc_auc: lr_tiny_v1" in titles["metrics"]


def test_stage_writes_the_loss_figure_when_a_model_has_loss_data(tmp_path: Path) -> None:
    layout = write_project(tmp_path)
    path = layout.plot_data("loss", "tiny", "rf", SNAPSHOT)  # as if rf trained in rounds
    loss_curve().to_csv(path, index=False)

    assert plot.main(argv(tmp_path)) == 0
    first = digests(layout)
    assert plot.main(argv(tmp_path)) == 0

    assert digests(layout) == first
    assert sorted(p.name for p in layout.figures_dir("tiny").iterdir()) == sorted(
        layout.figure(topic, "tiny", SNAPSHOT).name for topic in FIGURE_TOPICS
    )


def test_stage_missing_input_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    layout = write_project(tmp_path)
    layout.leaderboard("tiny").unlink()
    assert plot.main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"error: {layout.leaderboard('tiny')} does not exist" in err
    assert len(err.strip().splitlines()) == 1
    assert not layout.figures_dir("tiny").exists()


def test_stage_refuses_a_leaderboard_of_other_algorithms(tmp_path: Path, capsys) -> None:
    layout = write_project(tmp_path)
    stale = {**board(), "ranking": ["lr"], "models": {"lr": "lr_tiny_v1"}}
    layout.leaderboard("tiny").write_text(json.dumps(stale), encoding="utf-8")
    assert plot.main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert (
        f"error: {layout.leaderboard('tiny')} ranks lr but train.algos is rf, lr: rerun evaluate "
        "(dvc repro evaluate@tiny)"
    ) in err
    assert not layout.figures_dir("tiny").exists()


def test_stage_refuses_a_leaderboard_without_a_champion_key(tmp_path: Path, capsys) -> None:
    layout = write_project(tmp_path)
    old = {k: v for k, v in board().items() if k not in ("champion", "champion_model")}
    layout.leaderboard("tiny").write_text(json.dumps(old | {"best_algo": "lr"}), encoding="utf-8")
    assert plot.main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"error: {Layout(tmp_path).leaderboard('tiny')} has no 'champion' (an older leaderboard "
        "format): rerun evaluate (dvc repro evaluate@tiny)"
    )
    assert not layout.figures_dir("tiny").exists()


def test_stage_refuses_an_unknown_dataset(tmp_path: Path, capsys) -> None:
    write_project(tmp_path)
    assert plot.main(argv(tmp_path, "nope")) == 2
    assert capsys.readouterr().err.strip() == (
        "error: unknown dataset 'nope': params.yaml declares tiny"
    )


def test_stage_refuses_test_metrics_without_roc_auc(tmp_path: Path, capsys) -> None:
    layout = write_project(tmp_path)
    path = layout.test_metrics("tiny", "rf")
    stale = {k: v for k, v in metrics_of().items() if k != "roc_auc"}
    path.write_text(json.dumps(stale), encoding="utf-8")
    assert plot.main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "test metrics of tiny-rf have no 'roc_auc': rerun evaluate" in err
    assert len(err.strip().splitlines()) == 1
    assert not layout.figures_dir("tiny").exists()


def test_stage_refuses_plot_data_without_its_columns(tmp_path: Path, capsys) -> None:
    layout = write_project(tmp_path)
    path = layout.plot_data("calibration", "tiny", "lr", SNAPSHOT)
    calibration_curve().drop(columns="fraction_positive").to_csv(path, index=False)
    assert plot.main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "calibration data of tiny-lr has no column 'fraction_positive': rerun evaluate" in err
    assert not layout.figures_dir("tiny").exists()


def test_importing_the_stage_loads_no_plotting_templating_or_params_library() -> None:
    code = "import json, sys, stages.plot\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    loaded = {name.split(".")[0] for name in json.loads(out.splitlines()[-1])}
    assert not loaded & {"pandas", "numpy", "matplotlib", "jinja2", "pydantic", "yaml"}
