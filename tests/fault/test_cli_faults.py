"""The batch CLI under faults (issue 8 items 3, 6, 7): every failure is one ``error:`` line,
never a traceback; an existing output file is left as it was; formulas never reach the output.

A tiny project (lr trained by the real stage mains on ``make_frame``; dvc.lock written as a
``dvc repro`` would) keeps these fast: the serving tests' full project is not needed here.
"""

from __future__ import annotations

import csv
import errno
import os
import resource
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tabml.files import md5_file
from tabml.layout import Layout
from tabml.serving import predict
from tests.helpers import batch_cli, capture, without_coverage
from tests.unit.conftest import make_frame, make_project

MODEL = "lr_tiny_v1"
OLD = "keep me\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("cli") / "project", make_frame(), ("lr",))
    layout, relative = Layout(root), Layout(Path("."))
    outs = [
        {"path": str(rel), "md5": md5_file(local)}
        for local, rel in (
            (layout.model("lr", "tiny", 1), relative.model("lr", "tiny", 1)),
            (layout.card("lr", "tiny", 1), relative.card("lr", "tiny", 1)),
        )
    ]
    lock = {"schema": "2.0", "stages": {"train@tiny": {"cmd": "train", "outs": outs}}}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock), encoding="utf-8")
    return root


@pytest.fixture
def rows(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    make_frame(8, seed=1).drop(columns="y").to_csv(path, index=False)
    return path


def cli(project: Path, source: Path, output: Path | str, *extra: str) -> list[str]:
    return [
        "--root",
        str(project),
        "--model",
        MODEL,
        "--input",
        str(source),
        "--output",
        str(output),
        *extra,
    ]


def one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


Scoring = Callable[[type[BaseException] | BaseException, Path], tuple[int, str]]


@pytest.fixture
def score_raising(project: Path, rows: Path, capsys, monkeypatch) -> Scoring:
    """``score_raising(error, out)``: (exit code, its one error line) of the batch CLI's main,
    in this process, scoring ``rows`` into ``out`` with a model that raises ``error``."""

    def score(error: type[BaseException] | BaseException, out: Path) -> tuple[int, str]:
        def boom(self, batch):
            raise error

        monkeypatch.setattr("tabml.serving.scoring.Predictor.predict_proba", boom)
        code = predict.main(cli(project, rows, out))
        return code, one_error_line(capsys.readouterr().err)

    return score


def test_output_is_a_directory(project, rows, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    proc = batch_cli(*cli(project, rows, folder))
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert f"--output {folder} is a directory" in line
    assert str(folder / "predictions.csv") in line  # what to give instead
    assert list(folder.iterdir()) == []


def test_output_where_no_file_can_be_created(project, rows):
    proc = batch_cli(*cli(project, rows, "/proc/version"))
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert line.startswith("error: cannot write --output /proc/version: ")
    assert "in /proc" in line and "choose another --output" in line


def test_file_size_limit_leaves_the_existing_output_intact(project, rows, tmp_path):
    """A real OSError from a real write: RLIMIT_FSIZE makes write() fail with EFBIG (Python
    ignores SIGXFSZ), as a full disk fails with ENOSPC."""
    out = tmp_path / "predictions.csv"
    out.write_text(OLD)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

    # Coverage's data file would hit the size limit too: the child runs without it.
    proc = batch_cli(*cli(project, rows, out), preexec_fn=limit, env=without_coverage())
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert line.startswith(f"error: cannot write --output {out}: File too large")
    assert f"{out} was left as it was" in line
    assert out.read_text() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv", "rows.csv"]


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (errno.ENOSPC, "free some disk space or choose another --output"),
        (errno.EROFS, "choose another --output"),
        (errno.EACCES, "choose another --output"),
    ],
    ids=["disk-full", "read-only", "permission"],
)
def test_write_errors_are_one_line_and_keep_the_old_file(
    project, rows, tmp_path, capsys, monkeypatch, code, advice
):
    out = tmp_path / "predictions.csv"
    out.write_text(OLD)

    def fail(self: pd.DataFrame, *args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    assert predict.main(cli(project, rows, out)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: cannot write --output {out}: ")
    assert advice in line and f"{out} was left as it was" in line
    assert out.read_text() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv", "rows.csv"]


def test_out_of_memory_is_one_line(rows, tmp_path, score_raising):
    out = tmp_path / "p.csv"
    code, line = score_raising(MemoryError, out)
    assert code == 2
    assert line.startswith(f"error: out of memory scoring {rows}: ")
    assert "split it into smaller files" in line
    assert not out.exists()


FAILING = """
import sys
from tabml.serving import predict, scoring
def boom(self, batch):
    raise {exc}
scoring.Predictor.predict_proba = boom
sys.exit(predict.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("exc", [KeyError("x"), ZeroDivisionError(), RuntimeError("odd")])
def test_unexpected_errors_are_one_line_exit_1(rows, tmp_path, score_raising, exc):
    out = tmp_path / "p.csv"
    code, line = score_raising(exc, out)
    assert code == 1
    assert line == (
        f"error: unexpected {type(exc).__name__} while scoring {rows}: please report it "
        "(--verbose shows the traceback)"
    )
    assert not out.exists()


def test_verbose_shows_the_traceback_of_a_bug_then_the_one_line(project, rows, tmp_path):
    out = tmp_path / "p.csv"
    script = [sys.executable, "-c", FAILING.format(exc="ZeroDivisionError()")]
    proc = capture([*script, *cli(project, rows, out, "--verbose")])
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "\nZeroDivisionError\n" in proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        f"error: unexpected ZeroDivisionError while scoring {rows}: please report it "
        "(--verbose shows the traceback)"
    )
    assert not out.exists()


def test_interrupt_is_one_line(tmp_path, score_raising):
    out = tmp_path / "p.csv"
    out.write_text(OLD)
    code, line = score_raising(KeyboardInterrupt, out)
    assert code == 130
    assert line == f"error: interrupted: {out} was left as it was"
    assert out.read_text() == OLD


def test_huge_values_are_one_line_exit_2_in_a_real_process(project, tmp_path):
    frame = make_frame(8, seed=1).drop(columns="y").astype(object)
    frame.loc[2, "income"] = "1e308"
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    proc = batch_cli(*cli(project, source, tmp_path / "p.csv"))
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert line.startswith("error: column 'income', row 2 (CSV line 4): ")
    assert "out of range" in line


FORMULAS = [
    '=HYPERLINK("http://evil.example","click")',
    "+SUM(1,2)",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
]


def test_keep_neutralises_formulas_but_not_numbers(project, tmp_path):
    frame = make_frame(8, seed=1).drop(columns="y")
    frame.insert(0, "note", [*FORMULAS, "plain", "-1.5"])  # text column: "-1.5" is text here
    frame.insert(1, "delta", [-1.5, 2.0, -3.0, 0.0, 1e-3, -2e10, 4.0, 5.0])
    frame.insert(2, "=cmd", ["a"] * 8)
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False, quoting=csv.QUOTE_NONNUMERIC)  # keeps the bare "\r"
    out = tmp_path / "p.csv"
    proc = batch_cli(*cli(project, source, out, "--keep", "note", "delta", "=cmd"))
    assert proc.returncode == 0, proc.stderr
    result = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(result.columns)[:3] == ["note", "delta", "'=cmd"]
    assert result["note"].tolist() == [*("'" + f for f in FORMULAS), "plain", "-1.5"]
    assert result["delta"].tolist() == [
        *("-1.5", "2.0", "-3.0", "0.0", "0.001", "-20000000000.0", "4.0", "5.0")
    ]
    text = out.read_text()
    for cell in FORMULAS:
        assert f",{cell}" not in text and f"\n{cell}" not in text and f'"{cell}' not in text
