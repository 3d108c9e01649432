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
    }
    for algo, metrics in all_metrics().items():
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
    metrics = all_metrics()
    data = plot.read_plot_data(layout, "tiny", SNAPSHOT, ALGOS)

    figures = plot.dataset_figures("tiny", spec, raw, metrics, board(), data, params, total)

    titles = {topic: fig.axes[0].get_title() or fig.texts[0].get_text() for topic, fig in figures}
    assert list(titles) == [t for t in FIGURE_TOPICS if t != "loss"]
    for topic in eda.EDA_TOPICS:
        assert "sample of 100 of 1,000 rows" in titles[topic], topic
    assert titles["roc"] == "tiny: ROC curves (test split)"


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
    assert "error: leaderboard of 'tiny' ranks lr but train.algos is rf, lr: rerun evaluate" in err
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
