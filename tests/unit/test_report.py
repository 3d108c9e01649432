"""The offline report: the page (tabml.report) and the report stage, which builds it from what
the pipeline left on disk (leaderboards, test metrics, figure PNGs, model cards, data files)
plus the params and the git revision. Every check parses the HTML, as a reader would see it."""

from __future__ import annotations

import base64
import copy
import json
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from stages import report as report_stage
from tabml import evaluation, report
from tabml.errors import DataError, ModelFileError
from tabml.files import md5_file
from tabml.layout import Layout
from tabml.metrics import METRICS
from tabml.plots import compare, eda
from tests.browser import page_requests, render_dom, requires_chromium

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = "20251130"
ALGOS = ("rf", "xgb", "lr")
CHAMPION, NO_CHAMPION = "credit", "churn"  # the two fixture datasets, in params order
DATASETS = (CHAMPION, NO_CHAMPION)
UNKNOWN_TOPIC = "mystery"  # a figure topic no code knows: shown anyway, last

# --- parsing the page ---------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}
INLINE = {"a", "b", "code", "em", "i", "span", "strong", "wbr"}  # no space around their text


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        """The visible text, whitespace folded (as a browser shows it)."""
        parts = [
            c
            if isinstance(c, str)
            else " "
            if c.tag == "br"
            else c.text()
            if c.tag in INLINE
            else f" {c.text()} "
            for c in self.children
        ]
        return " ".join("".join(parts).split())

    def iter(self, tag: str | None = None):
        for child in self.children:
            if isinstance(child, Node):
                if tag is None or child.tag == tag:
                    yield child
                yield from child.iter(tag)

    def find(self, tag: str) -> Node:
        return next(self.iter(tag))

    def rows(self) -> list[list[str]]:
        """The cells' text of every row of a table (not of tables nested in it)."""
        out = []
        for tr in self.iter("tr"):
            owner = tr.parent
            while owner is not None and owner.tag != "table":
                owner = owner.parent
            if owner is self:
                out.append([c.text() for c in tr.children if isinstance(c, Node)])
        return out


class Page(HTMLParser):
    """A tree of the page's elements, strict about nesting: a stray end tag fails."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.current = self.root
        self.ids: dict[str, Node] = {}
        self.feed(html)
        self.close()
        assert self.current is self.root, f"unclosed <{self.current.tag}>"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(node)
        if "id" in node.attrs:
            assert node.attrs["id"] not in self.ids, f"duplicate id {node.attrs['id']}"
            self.ids[node.attrs["id"]] = node
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.current = self.current.parent

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        assert self.current.tag == tag, f"</{tag}> closes <{self.current.tag}>"
        self.current = self.current.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)

    def __getitem__(self, element_id: str) -> Node:
        return self.ids[element_id]

    def iter(self, tag: str | None = None):
        return self.root.iter(tag)

    def find(self, tag: str) -> Node:
        return self.root.find(tag)


def assert_self_contained(html: str, page: Page) -> None:
    """No external resource: images are data URIs, links are anchors, no script or link tag
    (a URL may be shown as text, e.g. a dataset's source, never fetched)."""
    tags = {node.tag for node in page.iter()}
    assert not tags & {"script", "link", "iframe", "object", "embed", "base", "form"}
    for node in page.iter():
        assert not any("://" in value for value in node.attrs.values()), node.attrs
        for name in ("src", "href", "srcset", "data", "action"):
            if name in node.attrs:
                link = node.attrs[name]
                assert link.startswith(("data:image/png;base64,", "#")), link
                if link.startswith("#"):
                    assert link[1:] in page.ids, f"dangling link {link}"
    assert "url(" not in html and "@import" not in html  # nothing fetched from the CSS either


# --- fixture data (the formats of issue 10) -----------------------------------------------


def tiny_png(seed: int) -> bytes:
    """A valid 2x1 RGB PNG whose pixels depend on ``seed``: distinct bytes per figure."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    pixels = bytes([0, seed % 256, 90, 200, 30, 200, (seed * 7) % 256])
    header = struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


def board_entry(name: str, algo: str, cv: float, test: float, **extra: Any) -> dict[str, Any]:
    return {
        "model_id": f"{algo}_{name}_v1",
        "cv_mean": cv,
        "cv_std": 0.012,
        "cv_se": 0.0054,
        "test": test,
        "test_low": round(test - 0.028, 6),
        "test_high": round(test + 0.022, 6),
        "threshold": 0.5,
        "threshold_rule": "fixed: evaluate.threshold",
        "calibration": "none",
        **extra,
    }


def leaderboard(name: str) -> dict[str, Any]:
    """credit: lr is champion though xgb ranks first (within one standard error);
    churn: no champion (the gate)."""
    lr_extra = {
        "threshold": 0.371234,
        "threshold_rule": "auto: max F1 on out-of-fold predictions",
        "calibration": "sigmoid",
    }
    models = {
        "xgb": board_entry(name, "xgb", 0.85, 0.848),
        "lr": board_entry(name, "lr", 0.845, 0.846768, **lr_extra),
        "rf": board_entry(name, "rf", 0.83, 0.84),
    }
    crowned = name == CHAMPION
    return {
        "metric": "roc_auc",
        "higher_is_better": True,
        "cv_folds": 5,
        "rule": "best CV mean; a simpler model (lr < xgb < rf) within one standard error of "
        "it wins",
        "min_score": None if crowned else 0.9,
        "champion": "lr" if crowned else None,
        "champion_model": f"lr_{name}_v1" if crowned else None,
        "reason": "lr is within one standard error of xgb (0.8450 vs 0.8500): the simpler "
        "model wins"
        if crowned
        else "gate: best CV roc_auc 0.8500 < evaluate.min_score 0.9",
        "ranking": ["xgb", "lr", "rf"],
        "models": models,
    }


def metrics_file(algo: str) -> dict[str, Any]:
    shift = {"rf": 0.0, "xgb": 0.02, "lr": 0.01}[algo]
    values: dict[str, Any] = {m: round(0.7 + shift, 6) for m in METRICS}
    values.update(log_loss=round(0.45 - shift, 6), brier=round(0.15 - shift, 6), n_test=1114)
    values["threshold"] = 0.371234 if algo == "lr" else 0.5
    values["ci95"] = {
        m: {"low": round(values[m] - 0.03, 6), "high": round(values[m] + 0.02, 6)} for m in METRICS
    }
    return values


def card(name: str, algo: str, train_md5: str) -> dict[str, Any]:
    """A model card as train writes it (tabml.artifact.ModelCard, issue-10 fields)."""
    folds = [0.84, 0.85, 0.86, 0.85, 0.85]
    return {
        "card_format": 1,
        "model_id": f"{algo}_{name}_v1",
        "algo": algo,
        "dataset": name,
        "version": 1,
        "model_file": f"{algo}_{name}_v1.pkl",
        "loading": f"joblib.load('{algo}_{name}_v1.pkl') gives a scikit-learn Pipeline",
        "target": "y",
        "classes": ["no", "yes"],
        "positive_class": "yes",
        "columns": [
            {"name": "income", "kind": "numeric", "dtype": "float64", "categories": []},
            {"name": "color", "kind": "categorical", "dtype": "object", "categories": ["b"]},
        ],
        "feature_names": ["income", "color_b"],
        "params": {
            "dataset": {"source": f"{name}.csv", "target": "y"},
            algo: {"C": 0.5, "max_iter": 1000, "class_weight": None}
            if algo == "lr"
            else {"n_estimators": 7, "max_depth": None},
        },
        "data": {
            "snapshot": SNAPSHOT,
            "train_file": f"data/interim/{name}/{name}-train_interim_{SNAPSHOT}.csv",
            "train_md5": train_md5,
            "train_rows": 30,
        },
        "train_metrics": {"n_train": 30, "train_roc_auc": 0.931234},
        "history": {},
        "libraries": {"python": "3.11", "scikit-learn": "1.9.1", "numpy": "2.4.6"},
        "check": {"rows": [{"income": 1.5, "color": "b"}], "proba": [0.25]},
        "threshold": 0.371234 if algo == "lr" else 0.5,
        "threshold_rule": "auto: max F1 on out-of-fold predictions"
        if algo == "lr"
        else "fixed: evaluate.threshold",
        "calibration": "sigmoid" if algo == "lr" else "none",
        "cv": {
            "folds": 5,
            "seed": 42,
            "rows": 30,
            "metrics": {
                m: {"mean": 0.85, "std": 0.006325, "values": folds} for m in ("roc_auc", "f1")
            },
        },
    }


def figure_topics() -> list[str]:
    """Every figure the fixture has: the plot stage's topics (loss included), categorical
    and confusion (drawn by issue 10's plot stage) and one no code knows."""
    return list(dict.fromkeys([*report.FIGURE_TOPICS, "categorical", "confusion", UNKNOWN_TOPIC]))


def write_inputs(root: Path) -> Layout:
    """params.yaml with two datasets, and what ingest, split, train, evaluate and plot leave
    on disk for each: raw and split files, model files and cards, leaderboard, test metrics
    and one PNG per figure."""
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
    raw["train"]["rf"]["n_estimators"] = 77
    raw["evaluate"]["metric"] = "roc_auc"
    text = yaml.safe_dump(raw, sort_keys=False)  # datasets in this order
    (root / "params.yaml").write_text(text, encoding="utf-8")
    layout = Layout(root)
    for name in DATASETS:
        for path, content in (
            (layout.raw(name, SNAPSHOT), f"income,color,y\n1.5,b,yes\n# {name} raw\n"),
            (layout.interim(name, "train", SNAPSHOT), f"income,color,y\n1.5,b,yes # {name}\n"),
            (layout.interim(name, "test", SNAPSHOT), f"income,color,y\n2.5,b,no # {name}\n"),
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        train_md5 = md5_file(layout.interim(name, "train", SNAPSHOT))
        for algo in ALGOS:
            pkl = layout.model(algo, name, 1)
            pkl.parent.mkdir(parents=True, exist_ok=True)
            pkl.write_bytes(f"pickle of {algo} {name}".encode())
            layout.card(algo, name, 1).write_text(
                json.dumps(card(name, algo, train_md5), indent=2, sort_keys=True) + "\n",
                encoding="utf-8",
            )
            path = layout.test_metrics(name, algo)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(metrics_file(algo)), encoding="utf-8")
        path = layout.leaderboard(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(leaderboard(name)), encoding="utf-8")
        for i, topic in enumerate(figure_topics()):
            path = layout.figure(topic, name, SNAPSHOT)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tiny_png(i + 10 * DATASETS.index(name)))
    return layout


def argv(root: Path) -> list[str]:
    return ["--params", str(root / "params.yaml"), "--root", str(root)]


def build(root: Path) -> tuple[str, Page]:
    assert report_stage.main(argv(root)) == 0
    html = Layout(root).report.read_text(encoding="utf-8")
    return html, Page(html)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Layout, str, Page]:
    """The page of the fixture project, built once (the tests only read it)."""
    root = tmp_path_factory.mktemp("built")
    layout = write_inputs(root)
    html, page = build(root)
    return layout, html, page


# --- the whole page, from the stage -------------------------------------------------------


def test_page_has_contents_and_one_section_per_dataset(built) -> None:
    _, html, page = built
    assert html.startswith("<!DOCTYPE html>") and html.endswith("</html>\n")
    assert_self_contained(html, page)
    assert page.find("title").text() == "Model report: credit, churn"
    contents = page["contents"]
    links = [a.attrs["href"] for a in contents.iter("a")]
    assert links[0] == "#provenance"
    for name in DATASETS:
        for part in ("", "-leaderboard", "-test", "-figures", "-models", "-data", "-params"):
            assert f"#{name}{part}" in links
    items = [li.text() for li in contents.find("ul").children if isinstance(li, Node)]
    assert items[1].startswith("credit: champion lr_credit_v1")
    assert items[2].startswith("churn: no champion")
    sections = [s.attrs["id"] for s in page.iter("section")]
    assert sections == ["provenance", *DATASETS]


def test_champion_and_no_champion_say_why(built) -> None:
    _, _, page = built
    verdict = page["credit-verdict"]
    assert verdict.text() == (
        "Champion: lr_credit_v1 ★. Why: lr is within one standard error of xgb (0.8450 vs "
        "0.8500): the simpler model wins"
    )
    assert page["churn-verdict"].text() == (
        "No champion. Why: gate: best CV roc_auc 0.8500 < evaluate.min_score 0.9"
    )
    intro = page["credit-leaderboard"].parent.text()
    assert "Rule: best CV mean; a simpler model (lr < xgb < rf) within one standard" in intro
    assert "Promotion gate (evaluate.min_score): none." in intro
    assert "Promotion gate (evaluate.min_score): 0.9000." in page["churn"].text()


def test_leaderboard_cells_cv_interval_threshold_calibration_champion(built) -> None:
    _, _, page = built
    table = page["credit-leaderboard-table"]
    head, *rows = table.rows()
    assert head == [
        "rank",
        "model",
        "algorithm",
        "CV roc_auc ↑ mean ± std (5 folds)",
        "test roc_auc ↑ [95% interval]",
        "threshold (rule)",
        "calibration",
    ]
    assert rows == [
        [
            "1",
            "xgb_credit_v1",
            "xgb",
            "0.8500 ± 0.0120",
            "0.8480 [0.8200, 0.8700]",
            "0.5 (fixed: evaluate.threshold)",
            "none",
        ],
        [
            "2",
            "lr_credit_v1 ★ champion",
            "lr",
            "0.8450 ± 0.0120",
            "0.8468 [0.8188, 0.8688]",
            "0.371234 (auto: max F1 on out-of-fold predictions)",
            "sigmoid",
        ],
        [
            "3",
            "rf_credit_v1",
            "rf",
            "0.8300 ± 0.0120",
            "0.8400 [0.8120, 0.8620]",
            "0.5 (fixed: evaluate.threshold)",
            "none",
        ],
    ]
    marked = [tr for tr in table.iter("tr") if tr.attrs.get("class") == "champion"]
    assert [tr.text().split()[1] for tr in marked] == ["lr_credit_v1"]
    # no champion: no row marked, no star anywhere in the section
    churn = page["churn-leaderboard-table"]
    assert not [tr for tr in churn.iter("tr") if tr.attrs.get("class") == "champion"]
    assert "★" not in page["churn"].text()
    # the model ids link to their cards
    assert [a.attrs["href"] for a in table.iter("a")] == [
        "#card-xgb_credit_v1",
        "#card-lr_credit_v1",
        "#card-rf_credit_v1",
    ]


def test_leaderboard_without_cv_or_interval_says_so(tmp_path: Path) -> None:
    # evaluate ranks a model without CV results last, with null CV fields; a bootstrap
    # interval that is undefined is null
    layout = write_inputs(tmp_path)
    board = leaderboard(NO_CHAMPION)
    board["models"]["rf"].update(cv_mean=None, cv_std=None, cv_se=None, test_low=None)
    board["cv_folds"] = None
    layout.leaderboard(NO_CHAMPION).write_text(json.dumps(board), encoding="utf-8")
    _, page = build(tmp_path)
    head, *rows = page["churn-leaderboard-table"].rows()
    assert head[3] == "CV roc_auc ↑ mean ± std"
    assert rows[2][:5] == ["3", "rf_churn_v1", "rf", "not cross-validated", "0.8400 [n/a, 0.8620]"]


def test_test_metrics_every_metric_with_its_interval(built) -> None:
    _, _, page = built
    head, *rows = page["credit-test-table"].rows()
    assert head == ["metric", "xgb_credit_v1", "lr_credit_v1 ★", "rf_credit_v1"]
    by_name = {row[0].replace(" ↑", "").replace(" ↓", ""): row[1:] for row in rows}
    assert list(by_name) == [*METRICS, "n_test", "threshold"]
    assert by_name["roc_auc"] == [
        "0.7200 [0.6900, 0.7400]",
        "0.7100 [0.6800, 0.7300]",
        "0.7000 [0.6700, 0.7200]",
    ]
    assert by_name["log_loss"][0] == "0.4300 [0.4000, 0.4500]"
    assert by_name["n_test"] == ["1,114"] * 3
    assert by_name["threshold"] == ["0.5", "0.371234", "0.5"]
    assert [r[0] for r in rows if r[0].startswith("log_loss")] == ["log_loss ↓"]


def test_every_figure_is_embedded_in_order_with_its_caption(built) -> None:
    _, _, page = built
    for name in DATASETS:
        figures = [f for f in page[f"{name}-figures"].parent.iter("figure")]
        mine = [f for f in figures if f.attrs["id"].startswith(f"{name}-fig-")]
        topics = [f.attrs["id"].removeprefix(f"{name}-fig-") for f in mine]
        assert sorted(topics) == sorted(figure_topics())  # every PNG, known or not
        assert topics == report.figure_order(figure_topics())
        eda_at = [topics.index(t) for t in eda.EDA_TOPICS]
        model_at = [topics.index(t) for t in compare.MODEL_TOPICS]
        assert max(eda_at) < min(model_at)  # EDA first, then the models
        assert topics[-1] == UNKNOWN_TOPIC  # a topic no code knows comes last
        for i, topic in enumerate(figure_topics()):
            figure = page[f"{name}-fig-{topic}"]
            img = figure.find("img")
            png = tiny_png(i + 10 * DATASETS.index(name))
            assert img.attrs["src"] == "data:image/png;base64," + base64.b64encode(png).decode()
            assert img.attrs["alt"] == f"{name}: {topic}"
            assert figure.find("figcaption").text().startswith(f"{topic}: ")
        roc = page[f"{name}-fig-roc"].find("figcaption").text()
        assert roc == "roc: " + report.caption("roc", "y", "yes", "roc_auc")
        balance = page[f"{name}-fig-balance"].find("figcaption").text()
        assert "the positive class is 'yes'" in balance  # filled from params
        unknown = page[f"{name}-fig-{UNKNOWN_TOPIC}"].find("figcaption").text()
        assert unknown == f"{UNKNOWN_TOPIC}: " + report.UNKNOWN_CAPTION.format(topic=UNKNOWN_TOPIC)


def params_rows(page: Page, name: str) -> list[list[str]]:
    """The rows of every params table of a dataset (one table per section)."""
    return [row for table in page[f"{name}-params-tables"].iter("table") for row in table.rows()]


def test_params_that_produced_it(built) -> None:
    _, _, page = built
    rows = params_rows(page, CHAMPION)
    sections = [r[0] for r in rows if len(r) == 1]
    assert sections == ["datasets.credit", "split", "featurize", "train", "evaluate"]
    values = {r[0]: r[1] for r in rows if len(r) == 2}
    assert values["datasets.credit.source"] == "credit.csv"
    assert values["datasets.credit.target"] == "y"
    assert values["datasets.credit.positive_class"] == "yes"
    assert values["datasets.credit.snapshot"] == SNAPSHOT
    assert values["datasets.credit.drop_columns"] == "[]"
    assert values["split.test_size"] == "0.25" and values["split.seed"] == "42"
    assert values["featurize.scale_numeric"] == "true"
    assert values["train.algos"] == "[rf, xgb, lr]"
    assert values["train.rf.n_estimators"] == "77"
    assert values["train.rf.max_depth"] == "12"
    assert values["evaluate.metric"] == "roc_auc"
    assert not any(k.startswith(("datasets.churn", "plot.", "dask.")) for k in values)
    churn = {r[0] for r in params_rows(page, NO_CHAMPION) if len(r) == 2}
    assert "datasets.churn.target" in churn and "datasets.credit.target" not in churn


def test_the_page_says_how_to_find_its_git_revision(built) -> None:
    _, _, page = built
    # a page naming a commit could not be rebuilt byte for byte from the commit recording it
    assert page["revision"].text() == report.REVISION_NOTE
    assert page["revision"].parent.find("th").text() == "git revision"


def test_file_hashes_of_data_models_and_cards(built) -> None:
    layout, _, page = built
    for name in DATASETS:
        rows = {r[0]: r[1:] for r in page[f"{name}-data-table"].rows()[1:]}
        expected = {
            "raw snapshot": layout.raw(name, SNAPSHOT),
            "train split": layout.interim(name, "train", SNAPSHOT),
            "test split": layout.interim(name, "test", SNAPSHOT),
        }
        for algo in ALGOS:
            expected[f"model {algo}_{name}_v1"] = layout.model(algo, name, 1)
            expected[f"card of {algo}_{name}_v1"] = layout.card(algo, name, 1)
        assert set(rows) == set(expected)
        for what, path in expected.items():
            assert rows[what] == [path.relative_to(layout.root).as_posix(), md5_file(path)]
    raw = layout.raw(CHAMPION, SNAPSHOT)
    assert page["credit-data-table"].rows()[1] == [
        "raw snapshot",
        f"data/raw/{raw.name}",
        md5_file(raw),
    ]


def card_facts(page: Page, model_id: str) -> dict[str, str]:
    article = page[f"card-{model_id}"]
    table = article.find("table")
    return {row[0]: row[1] for row in table.rows()}


def test_every_model_card_is_rendered(built) -> None:
    layout, _, page = built
    for name in DATASETS:
        cards = [a.attrs["id"] for a in page[name].iter("article")]
        assert cards == [f"card-{a}_{name}_v1" for a in ("xgb", "lr", "rf")]  # rank order
    facts = card_facts(page, "lr_credit_v1")
    train_md5 = md5_file(layout.interim(CHAMPION, "train", SNAPSHOT))
    pkl, json_path = layout.model("lr", CHAMPION, 1), layout.card("lr", CHAMPION, 1)
    assert facts["model id"] == "lr_credit_v1"
    assert facts["algorithm"] == "lr (version 1)"
    assert facts["model file"] == f"models/credit/lr_credit_v1.pkl md5 {md5_file(pkl)}"
    assert facts["card file"] == f"models/credit/lr_credit_v1.json md5 {md5_file(json_path)}"
    assert facts["threshold"] == "0.371234 (auto: max F1 on out-of-fold predictions)"
    assert facts["calibration"] == "sigmoid"
    assert "C 0.5" in facts["params"] and "class_weight null" in facts["params"]
    cv = facts["cross-validation"]
    assert cv.startswith("5 folds, seed 42, 30 train rows")
    assert "roc_auc 0.8500 ± 0.0063 0.8400, 0.8500, 0.8600, 0.8500, 0.8500" in cv
    assert cv.index("f1 0.8500") < cv.index("roc_auc 0.8500")  # metrics in METRICS order
    assert "train_roc_auc 0.9312" in facts["train metrics"]
    assert "scikit-learn 1.9.1" in facts["libraries"] and "python 3.11" in facts["libraries"]
    assert facts["data"] == (
        f"snapshot {SNAPSHOT}, 30 train rows from "
        f"data/interim/credit/credit-train_interim_{SNAPSHOT}.csv md5 {train_md5} "
        "✓ matches the train split on disk"
    )
    assert page["card-lr_credit_v1"].find("h4").text() == "lr_credit_v1 ★ champion"
    assert page["card-xgb_credit_v1"].find("h4").text() == "xgb_credit_v1"
    details = page["card-lr_credit_v1"].find("details")
    assert details.find("summary").text() == "Full model card (JSON)"
    shown = "".join(c for c in details.find("pre").children if isinstance(c, str))
    assert shown == json_path.read_text(encoding="utf-8")  # the card file, whole
    assert json.loads(shown)["model_id"] == "lr_credit_v1"


def test_card_trained_on_other_data_is_flagged(tmp_path: Path) -> None:
    layout = write_inputs(tmp_path)
    path = layout.card("rf", CHAMPION, 1)
    stale = json.loads(path.read_text(encoding="utf-8"))
    stale["data"]["train_md5"] = "0" * 32
    path.write_text(json.dumps(stale), encoding="utf-8")
    _, page = build(tmp_path)
    data = card_facts(page, "rf_credit_v1")["data"]
    assert f"md5 {'0' * 32} ✗ differs from the train split on disk" in data
    assert "rerun train (dvc repro train@credit-rf)" in data
    assert "✓ matches" in card_facts(page, "lr_credit_v1")["data"]


def test_card_without_cross_validation_says_so(tmp_path: Path) -> None:
    layout = write_inputs(tmp_path)
    path = layout.card("xgb", NO_CHAMPION, 1)
    old = json.loads(path.read_text(encoding="utf-8"))
    for key in ("cv", "threshold", "threshold_rule", "calibration"):
        del old[key]  # a card written before issue 10: the ModelCard defaults
    path.write_text(json.dumps(old), encoding="utf-8")
    _, page = build(tmp_path)
    facts = card_facts(page, "xgb_churn_v1")
    assert facts["cross-validation"] == (
        "none recorded (a card written before cross-validation): rerun train"
    )
    assert facts["threshold"] == "0.5 (fixed: 0.5)"


def test_stage_output_is_byte_identical_across_runs_and_environments(built) -> None:
    layout, html, _ = built
    report._environment.cache_clear()  # a fresh jinja2 environment, as in a new process
    assert report_stage.main(argv(layout.root)) == 0
    assert layout.report.read_text(encoding="utf-8") == html


# --- errors: one line naming the file and what to do --------------------------------------


def run_failing(root: Path, capsys) -> str:
    assert report_stage.main(argv(root)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not Layout(root).report.exists()
    return err.strip()


@pytest.mark.parametrize("kind", ["card", "model"])
def test_missing_card_or_model_file_says_rerun_train(tmp_path: Path, capsys, kind) -> None:
    layout = write_inputs(tmp_path)
    path = (layout.card if kind == "card" else layout.model)("xgb", NO_CHAMPION, 1)
    path.unlink()
    err = run_failing(tmp_path, capsys)
    assert err == f"error: {path} does not exist: rerun train (dvc repro train@churn-xgb)"


def test_card_of_another_model_says_rerun_train(tmp_path: Path, capsys) -> None:
    layout = write_inputs(tmp_path)
    path = layout.card("rf", CHAMPION, 1)
    other = json.loads(path.read_text(encoding="utf-8"))
    other["model_id"] = "rf_credit_v2"
    path.write_text(json.dumps(other), encoding="utf-8")
    err = run_failing(tmp_path, capsys)
    assert err == f"error: {path} describes 'rf_credit_v2', not 'rf_credit_v1': rerun train"


def old_board() -> dict[str, Any]:
    """A leaderboard as evaluate wrote it before issue 10."""
    return {
        "metric": "roc_auc",
        "higher_is_better": True,
        "best_algo": "lr",
        "best_model": "lr_credit_v1",
        "best_score": 0.75,
        "ranking": ["lr", "rf", "xgb"],
        "scores": {"lr": 0.75, "rf": 0.7, "xgb": 0.7},
        "models": {a: f"{a}_credit_v1" for a in ALGOS},
    }


def test_old_leaderboard_format_says_rerun_evaluate(tmp_path: Path, capsys) -> None:
    layout = write_inputs(tmp_path)
    path = layout.leaderboard(CHAMPION)
    path.write_text(json.dumps(old_board()), encoding="utf-8")
    err = run_failing(tmp_path, capsys)
    assert err == (
        f"error: {path} has no 'rule' (an older leaderboard format): rerun evaluate "
        "(dvc repro evaluate@credit)"
    )
    # the new top-level keys, but a model entry of the old format (a bare model id)
    board = leaderboard(CHAMPION)
    board["models"]["rf"] = "rf_credit_v1"
    path.write_text(json.dumps(board), encoding="utf-8")
    err = run_failing(tmp_path, capsys)
    assert err == (
        f"error: {path} has no model entry for 'rf' (an older leaderboard format): rerun "
        "evaluate (dvc repro evaluate@credit)"
    )


def test_old_test_metrics_format_says_rerun_evaluate(tmp_path: Path, capsys) -> None:
    layout = write_inputs(tmp_path)
    path = layout.test_metrics(NO_CHAMPION, "lr")
    old = metrics_file("lr")
    del old["ci95"]
    path.write_text(json.dumps(old), encoding="utf-8")
    err = run_failing(tmp_path, capsys)
    assert err == (
        f"error: {path} has no 'ci95' (an older test-metrics format): rerun evaluate "
        "(dvc repro evaluate@churn)"
    )


def test_missing_test_metrics_or_stale_ranking(tmp_path: Path, capsys) -> None:
    layout = write_inputs(tmp_path)
    layout.test_metrics(NO_CHAMPION, "rf").unlink()
    err = run_failing(tmp_path, capsys)
    assert err.startswith(f"error: {layout.test_metrics(NO_CHAMPION, 'rf')} does not exist")

    write_inputs(tmp_path)
    board = leaderboard(CHAMPION)
    board["ranking"] = ["xgb", "lr"]
    layout.leaderboard(CHAMPION).write_text(json.dumps(board), encoding="utf-8")
    err = run_failing(tmp_path, capsys)
    assert "ranks xgb, lr but train.algos is rf, xgb, lr: rerun evaluate" in err


def test_missing_figure_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    layout = write_inputs(tmp_path)
    missing = layout.figure("roc", NO_CHAMPION, SNAPSHOT)
    missing.unlink()
    err = run_failing(tmp_path, capsys)
    assert err == f"error: {missing} does not exist: run `dvc repro plot@churn` first"


def test_optional_figure_may_be_absent(tmp_path: Path) -> None:
    layout = write_inputs(tmp_path)
    for topic in report.OPTIONAL_TOPICS:
        layout.figure(topic, CHAMPION, SNAPSHOT).unlink()
    _, page = build(tmp_path)
    for topic in report.OPTIONAL_TOPICS:
        assert f"credit-fig-{topic}" not in page.ids and f"churn-fig-{topic}" in page.ids


def test_missing_data_file_says_which_stage_to_run(tmp_path: Path, capsys) -> None:
    layout = write_inputs(tmp_path)
    layout.raw(CHAMPION, SNAPSHOT).unlink()
    err = run_failing(tmp_path, capsys)
    assert err == (
        f"error: {layout.raw(CHAMPION, SNAPSHOT)} does not exist: run `dvc repro "
        "ingest@credit` first"
    )
    write_inputs(tmp_path)
    layout.interim(NO_CHAMPION, "test", SNAPSHOT).unlink()
    err = run_failing(tmp_path, capsys)
    assert err == (
        f"error: {layout.interim(NO_CHAMPION, 'test', SNAPSHOT)} does not exist: run `dvc "
        "repro split@churn` first"
    )


def test_dask_split_is_hashed_as_its_card_records_it(tmp_path: Path) -> None:
    from tabml.daskengine.featurize import parts_md5
    from tabml.params import DatasetParams

    layout = Layout(tmp_path)
    spec = DatasetParams(source="x.csv", target="y", positive_class="yes", snapshot=SNAPSHOT)
    spec = spec.model_copy(update={"engine": "dask"})
    raw = layout.raw("big", SNAPSHOT)
    raw.parent.mkdir(parents=True)
    raw.write_text("y\nyes\n", encoding="utf-8")
    for part in ("train", "test"):
        for i in range(2):
            path = layout.interim_part("big", part, i, SNAPSHOT)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"{part} {i}".encode())
    hashes = report_stage.data_hashes(layout, "big", spec)
    assert [(h.role, h.path) for h in hashes] == [
        ("raw", f"data/raw/big_raw_{SNAPSHOT}.csv"),
        ("train", "data/interim/big"),
        ("test", "data/interim/big"),
    ]
    assert hashes[1].md5 == parts_md5(layout.interim_parts("big", "train", SNAPSHOT))
    assert hashes[1].note == "md5 of the names and md5 of its 2 Parquet partitions"


def entry(name: str, algo: str) -> report.ModelEntry:
    data = card(name, algo, "d" * 32)
    return report.ModelEntry(
        card=data,
        card_text=json.dumps(data),
        model_file=report.FileHash("model", f"models/{name}/{algo}_{name}_v1.pkl", "a" * 32),
        card_file=report.FileHash("card", f"models/{name}/{algo}_{name}_v1.json", "b" * 32),
    )


def tiny_section() -> report.Section:
    name = CHAMPION
    figures = [report.Figure("roc", "curves <b>&</b> more", b"\x89PNG fake")]
    return report.Section(
        dataset=name,
        board=leaderboard(name),
        metrics={a: metrics_file(a) for a in ALGOS},
        models={a: entry(name, a) for a in ALGOS},
        figures=figures,
        params={f"datasets.{name}": {"source": "https://u:pw@host/x.csv?token=s3cret"}},
        data=[report.FileHash("train", "t.csv", "d" * 32)],
    )


def test_report_html_escapes_and_redacts() -> None:
    html = report.report_html([tiny_section()], title="Report <x>")
    page = Page(html)
    assert_self_contained(html, page)
    assert "<title>Report &lt;x&gt;</title>" in html and "<style>" in html  # CSS inline
    assert "curves &lt;b&gt;&amp;&lt;/b&gt; more" in html
    assert "data:image/png;base64,iVBORyBmYWtl" in html
    assert "pw" not in html and "s3cret" not in html  # params shown are redacted
    assert page["revision"].text() == report.REVISION_NOTE


def test_report_html_without_sections_says_so() -> None:
    html = report.report_html([])
    page = Page(html)
    assert page.find("title").text() == "Model report" and "No dataset to report." in html
    assert [s.attrs["id"] for s in page.iter("section")] == ["provenance"]
    assert_self_contained(html, page)


def test_report_html_needs_a_card_per_ranked_model() -> None:
    section = tiny_section()
    models = {a: m for a, m in section.models.items() if a != "rf"}
    broken = report.Section(section.dataset, section.board, section.metrics, models, [])
    with pytest.raises(ModelFileError, match=r"no model card of 'rf' .*: rerun train"):
        report.report_html([broken])
    metrics = {a: m for a, m in section.metrics.items() if a != "lr"}
    broken = report.Section(section.dataset, section.board, metrics, section.models, [])
    with pytest.raises(DataError, match="ranks 'lr' but it has no test metrics: rerun evaluate"):
        report.report_html([broken])


def test_check_board_refuses_foreign_or_dangling_entries() -> None:
    board = leaderboard(CHAMPION)
    assert evaluation.check_board(CHAMPION, board, ALGOS, "b.json") == {
        a: f"{a}_credit_v1" for a in ("xgb", "lr", "rf")
    }
    board["models"]["rf"]["model_id"] = "rf_churn_v1"
    with pytest.raises(DataError, match=r"names model 'rf_churn_v1' for 'rf'.*rerun evaluate"):
        evaluation.check_board(CHAMPION, board, ALGOS, "b.json")
    board = leaderboard(CHAMPION)
    del board["models"]["xgb"]["cv_std"]
    with pytest.raises(DataError, match=r"b\.json has no 'cv_std' for 'xgb'"):
        evaluation.check_board(CHAMPION, board, ALGOS, "b.json")
    board = leaderboard(CHAMPION)
    board["champion"] = "svm"
    with pytest.raises(DataError, match="crowns 'svm', which it does not rank"):
        evaluation.check_board(CHAMPION, board, ALGOS, "b.json")


def test_figure_order_eda_then_models_then_unknown_by_name() -> None:
    topics = ["zeta", "roc", "missing", "alpha", "balance"]
    assert report.figure_order(topics) == ["balance", "missing", "roc", "alpha", "zeta"]


def test_param_text_spells_values_as_yaml_does() -> None:
    assert report.param_text(None) == "null"
    assert report.param_text(True) == "true"
    assert report.param_text("") == '""'
    assert report.param_text(0.05) == "0.05" and report.param_text(300) == "300"
    assert report.param_text(["a", 1, None]) == "[a, 1, null]"
    assert report.flat_params("train", {"rf": {"n": 1}, "algos": ["rf"], "x": {}}) == [
        ("train.rf.n", "1"),
        ("train.algos", "[rf]"),
        ("train.x", "{}"),
    ]


def test_report_template_ships_inside_the_package() -> None:
    # Loaded with jinja2.PackageLoader("tabml", "templates"): it must be package data, not a
    # file beside the repository, so a wheel renders the same page.
    template = resources.files("tabml").joinpath("templates", report.TEMPLATE)
    assert template.is_file()
    assert "<script" not in template.read_text(encoding="utf-8")


def test_captions_have_one_home_and_fill_in_the_dataset() -> None:
    assert set(report.CAPTIONS) == set(report.FIGURE_TOPICS)
    text = report.caption("balance", "y", "yes", "roc_auc")
    assert text.startswith("Rows per class of the target column 'y'")
    assert "the positive class is 'yes'" in text
    assert "drop in log_loss" in report.caption("importance", "y", "yes", "log_loss")
    assert "evaluate.importance_rows" in report.caption("importance", "y", "yes", "roc_auc")
    assert report.caption("nope", "y", "yes", "roc_auc") == (
        "A figure of topic 'nope' drawn by the plot stage (no caption for it here)."
    )


def test_importing_the_stage_loads_no_plotting_templating_or_params_library() -> None:
    code = "import json, sys, stages.report\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    loaded = {name.split(".")[0] for name in json.loads(out.splitlines()[-1])}
    assert not loaded & {"pandas", "numpy", "matplotlib", "jinja2", "pydantic", "yaml"}


@requires_chromium
def test_page_renders_in_a_browser_fetching_nothing(built, tmp_path: Path) -> None:
    layout, _, _ = built
    net_log = tmp_path / "net.json"
    dom = Page(render_dom(layout.report.resolve().as_uri(), net_log=net_log))
    assert dom["credit-verdict"].text().startswith("Champion: lr_credit_v1 ★.")
    assert len([i for i in dom.iter("img") if i.attrs["src"].startswith("data:image/png")]) == (
        2 * len(figure_topics())
    )
    assert {u for u in page_requests(net_log) if not u.startswith("data:")} == set()
