"""`make bench-scale` end to end on a few thousand rows: real dvc repro in a temporary copy,
the plain script on the same CSV, one table (small models, so it stays quick)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, without_coverage

pytestmark = pytest.mark.pipeline

SMALL = (
    "train.rf.n_estimators=20",
    "train.xgb.n_estimators=40",
    "evaluate.importance_repeats=1",
)


def test_bench_scale_runs_the_pipeline_and_the_plain_script(tmp_path: Path) -> None:
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    cmd = [sys.executable, "-m", "tools.bench_scale", "--rows", "3000", "--workdir", str(tmp_path)]
    cmd += ["--json", str(out), "--markdown", str(md)]
    for setting in SMALL:
        cmd += ["--set", setting]
    proc = subprocess.run(
        cmd, cwd=REPO, env=without_coverage(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(out.read_text())

    stages = [row["stage"] for row in summary["table"]]
    assert stages[:3] == ["check-params", "ingest@bench", "split@bench"]
    for stage in ("featurize@bench", "train@bench-rf", "train@bench-xgb", "train@bench-lr"):
        assert stage in stages
    assert "evaluate@bench" in stages and "plot@bench" in stages
    assert stages[-2:] == ["overhead", "TOTAL"]
    assert summary["pipeline"]["unreported"] == []
    total = summary["table"][-1]
    assert total["seconds"] > sum(
        row["seconds"] for row in summary["table"][:-2]
    )  # dvc's time on top of its stages
    assert 0 < total["peak_rss_gb"] < 4
    assert summary["data"]["rows"] == 3000 and summary["data"]["columns"] == 21
    assert summary["settings"] == list(SMALL)

    # Both sides learn the same thing from the same split.
    for algo in ("rf", "xgb", "lr"):
        pipeline, plain = summary["auc"]["pipeline"][algo], summary["auc"]["plain"][algo]
        assert pipeline is not None and abs(pipeline - plain) < 0.05, (algo, pipeline, plain)
        # and cross-validate the same folds of the same train rows
        pipeline, plain = summary["auc"]["pipeline_cv"][algo], summary["auc"]["plain_cv"][algo]
        assert pipeline is not None and abs(pipeline - plain) < 0.05, (algo, pipeline, plain)

    # The printed table is stdout, alone; dvc's output and the progress went to stderr.
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["stage", "wall", "s"]
    assert any(line.startswith("TOTAL ") and line.endswith("\u00d7") for line in lines)
    assert "nproc" in proc.stdout and "warm page cache" in proc.stdout
    assert "Running stage 'train@bench-xgb'" in proc.stderr
    assert md.read_text().startswith("| stage | wall s |")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("bench-scale-")]  # removed
