"""The stage command line (tabml.cli): shared flags, one-line errors and exit code 2."""

from __future__ import annotations

import argparse
import errno
import os
import subprocess
from pathlib import Path

import pytest

from tabml.cli import one_line, run_stage, stage_parser
from tabml.errors import DataError, ModelFileError, ParamsError, PipelineError, SchemaError
from tabml.layout import Layout
from tests.unit.conftest import PARAMS_FILE, project_params, write_params


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def parser(**flags: bool):
    return stage_parser("python -m stages.test", "A test stage.", **flags)


def test_run_stage_params_error_prints_one_line_and_returns_2(tmp_path, capsys):
    raw = project_params()
    raw["split"]["test_size"] = 1.5
    params = write_params(tmp_path / "params.yaml", raw)
    called = []

    code = run_stage(parser(), lambda *a: called.append(a), ["--params", str(params)])

    err = capsys.readouterr().err
    assert code == 2
    assert called == []
    assert error_lines(err) == ["error: split.test_size = 1.5: out of range, allowed (0.0, 1.0)"]
    assert "Traceback" not in err


def test_run_stage_missing_params_file_returns_2(tmp_path, capsys):
    code = run_stage(parser(), lambda *a: None, ["--params", str(tmp_path / "no")])

    assert code == 2
    assert error_lines(capsys.readouterr().err) == [
        f"error: cannot read {tmp_path / 'no'}: No such file or directory"
    ]


def test_run_stage_collapses_multi_line_data_error(tmp_path, capsys):
    params = write_params(tmp_path / "params.yaml", project_params())

    def body(args, params, layout):
        raise DataError("first line\n   second   line")

    code = run_stage(parser(), body, ["--params", str(params)])

    assert code == 2
    assert error_lines(capsys.readouterr().err) == ["error: first line second line"]


@pytest.mark.parametrize(
    "error", [PipelineError, ParamsError, DataError, SchemaError, ModelFileError]
)
def test_run_stage_every_user_error_returns_2(tmp_path, capsys, error):
    params = write_params(tmp_path / "params.yaml", project_params())

    def body(args, params, layout):
        raise error("cannot use it")

    code = run_stage(parser(), body, ["--params", str(params)])

    err = capsys.readouterr().err
    assert code == 2
    assert error_lines(err) == ["error: cannot use it"]
    assert "Traceback" not in err


def test_user_errors_are_pipeline_errors():
    assert issubclass(SchemaError, DataError)
    for error in (ParamsError, DataError, SchemaError, ModelFileError):
        assert issubclass(error, PipelineError)


def test_run_stage_success_passes_params_and_layout(tmp_path, capsys):
    params_path = write_params(tmp_path / "params.yaml", project_params())
    seen = {}

    def body(args, params, layout):
        seen.update(dataset=args.dataset, layout=layout, datasets=list(params.datasets))

    argv = ["--params", str(params_path), "--root", str(tmp_path), "--dataset", "tiny"]
    code = run_stage(parser(dataset=True), body, argv)

    assert code == 0
    assert seen == {"dataset": "tiny", "layout": Layout(tmp_path), "datasets": ["tiny"]}
    assert error_lines(capsys.readouterr().err) == []


def test_run_stage_lets_bugs_raise(tmp_path):
    """Only user errors become exit code 2; a bug keeps its traceback."""
    params = write_params(tmp_path / "params.yaml", project_params())

    def body(args, params, layout):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_stage(parser(), body, ["--params", str(params)])


def test_stage_parser_defaults_and_required_flags():
    stage = parser(dataset=True, algo=True)

    args = stage.parse_args(["--dataset", "credit", "--algo", "rf"])

    assert (args.params, args.root, args.verbose) == ("params.yaml", ".", False)
    with pytest.raises(SystemExit):
        stage.parse_args(["--dataset", "credit"])


def test_stage_parser_flags_are_optional_per_stage():
    args = parser().parse_args(["-v", "--root", "/r", "--params", "p.yaml"])

    assert (args.params, args.root, args.verbose) == ("p.yaml", "/r", True)
    assert not hasattr(args, "dataset") and not hasattr(args, "algo")
    with pytest.raises(SystemExit):
        parser().parse_args(["--dataset", "credit"])


def test_stage_parser_help_names_the_command_and_the_stage(capsys):
    with pytest.raises(SystemExit) as info:
        parser(dataset=True).parse_args(["--help"])

    out = capsys.readouterr().out
    assert info.value.code == 0
    assert out.startswith("usage: python -m stages.test ")
    assert "A test stage." in out and "--dataset" in out


def test_repo_params_pass_run_stage():
    code = run_stage(parser(), lambda *a: None, ["--params", str(PARAMS_FILE)])

    assert code == 0


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a\nb", "a b"),
        ("  a \t b\n\n c  ", "a b c"),
        ("one line", "one line"),
        ("", ""),
    ],
)
def test_one_line_folds_whitespace(text, line):
    assert one_line(ValueError(text)) == line


# --- disks, memory and crashes: one line too, never a traceback ---------------------------


def run_raising(
    tmp_path: Path,
    error: BaseException | type[BaseException],
    *argv: str,
    cli: argparse.ArgumentParser | None = None,
) -> int:
    """The exit code of ``run_stage`` (``cli``, else ``parser()``; a valid params file,
    ``--root tmp_path``, then ``argv``) on a body that raises ``error``."""
    params = write_params(tmp_path / "params.yaml", project_params())

    def body(args, params, layout):
        raise error

    return run_stage(
        cli or parser(), body, ["--params", str(params), "--root", str(tmp_path), *argv]
    )


@pytest.mark.parametrize(
    ("code", "line"),
    [
        (
            errno.ENOSPC,
            "error: cannot write /r/models/rf_credit_v1.pkl: no space left on device: "
            "free space and rerun",
        ),
        (
            errno.EDQUOT,
            "error: cannot write /r/models/rf_credit_v1.pkl: disk quota exceeded: "
            "free space or raise the quota and rerun",
        ),
        (
            errno.EROFS,
            "error: cannot write /r/models/rf_credit_v1.pkl: read-only file system: "
            "make it writable (or run in a writable copy of the repository) and rerun",
        ),
        (
            errno.EACCES,
            "error: cannot access /r/models/rf_credit_v1.pkl: permission denied: "
            "give this user read and write access to it and its directory, and rerun",
        ),
        (
            errno.EPERM,
            "error: cannot access /r/models/rf_credit_v1.pkl: operation not permitted: "
            "give this user read and write access to it and its directory, and rerun",
        ),
        (
            errno.EFBIG,
            "error: cannot write /r/models/rf_credit_v1.pkl: file too large for the file "
            "system: write to a file system that allows larger files and rerun",
        ),
        (
            errno.EIO,
            "error: cannot access /r/models/rf_credit_v1.pkl: input/output error: "
            "check the disk (dmesg) and rerun",
        ),
    ],
)
def test_run_stage_disk_errors_are_one_line_naming_the_file(tmp_path, capsys, code, line):
    status = run_raising(tmp_path, OSError(code, os.strerror(code), "/r/models/rf_credit_v1.pkl"))

    err = capsys.readouterr().err
    assert status == 2
    assert error_lines(err) == [line]
    assert "Traceback" not in err


def test_run_stage_disk_error_without_a_file_name(tmp_path, capsys):
    status = run_raising(tmp_path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    assert status == 2
    assert error_lines(capsys.readouterr().err) == [
        f"error: cannot write under {tmp_path}: no space left on device: free space and rerun"
    ]


def test_run_stage_disk_error_masks_credentials_in_a_url(tmp_path, capsys):
    url = "https://user:hunter2@example.com/x.csv?sig=s3cr3t"

    assert run_raising(tmp_path, OSError(errno.EACCES, "denied", url)) == 2

    err = capsys.readouterr().err
    assert "hunter2" not in err and "s3cr3t" not in err
    assert len(error_lines(err)) == 1


@pytest.mark.parametrize(
    ("flags", "argv", "stage"),
    [
        ({}, [], "test"),
        ({"dataset": True}, ["--dataset", "credit"], "test@credit"),
        (
            {"dataset": True, "algo": True},
            ["--dataset", "credit", "--algo", "rf"],
            "test@credit-rf",
        ),
    ],
)
def test_run_stage_memory_error_names_the_stage(tmp_path, capsys, flags, argv, stage):
    status = run_raising(tmp_path, MemoryError, *argv, cli=parser(**flags))

    err = capsys.readouterr().err
    assert status == 2
    assert error_lines(err) == [
        f"error: stage {stage} ran out of memory: close other programs, lower the n_jobs "
        "settings in params.yaml or use a smaller dataset, and rerun"
    ]
    assert "Traceback" not in err


def test_run_stage_stage_names_follow_dvc_yaml(tmp_path, capsys):
    check = stage_parser("python -m stages.check_params", "Check.")

    assert run_raising(tmp_path, MemoryError, cli=check) == 2
    assert error_lines(capsys.readouterr().err)[0].startswith(
        "error: stage check-params ran out of memory: "
    )


@pytest.mark.parametrize(
    "error",
    [
        KeyboardInterrupt(),
        FileNotFoundError(errno.ENOENT, "No such file", "/x"),
        OSError(errno.EBADF, "bad"),
    ],
)
def test_run_stage_never_catches_interrupts_or_unexpected_os_errors(tmp_path, error):
    with pytest.raises(type(error)):
        run_raising(tmp_path, error)


def test_run_stage_removes_stale_temps_of_killed_runs_before_the_body(tmp_path):
    params = write_params(tmp_path / "params.yaml", project_params())
    proc = subprocess.Popen(["true"])
    proc.wait()
    stale = [
        tmp_path / "models" / f".rf_credit_v1.pkl.{proc.pid}-abcdefgh.tmp",
        tmp_path
        / "data"
        / "interim"
        / f".credit-train_interim_20251130.csv.{proc.pid}-abcdefgh.tmp",
        tmp_path / "metrics" / f".test.{proc.pid}-abcdefgh.tmp" / "credit-rf.json",
        tmp_path / "plots" / f".report.html.{proc.pid}-abcdefgh.tmp",
        tmp_path / "tuned" / f".credit-rf.yaml.{proc.pid}-abcdefgh.tmp",
    ]
    (tmp_path / ".dvc").mkdir()  # a DVC repository: its temp home is cleaned too
    stale.append(tmp_path / ".dvc" / "tmp" / "tabml" / f".x.csv.{proc.pid}-abcdefgh.tmp")
    live = tmp_path / "models" / f".lr_credit_v1.pkl.{os.getppid()}-abcdefgh.tmp"
    elsewhere = tmp_path / "notes" / f".x.csv.{proc.pid}-abcdefgh.tmp"  # not an output tree
    for path in (*stale, live, elsewhere):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x", encoding="utf-8")
    seen = []

    def body(args, params, layout):
        seen.extend(path for path in stale if path.exists())

    argv = ["--params", str(params), "--root", str(tmp_path)]
    assert run_stage(parser(), body, argv) == 0

    assert seen == []
    assert not (tmp_path / "metrics" / f".test.{proc.pid}-abcdefgh.tmp").exists()
    assert live.exists() and elsewhere.exists()


@pytest.mark.parametrize(
    "error",
    [
        DataError("cannot read source http://alice:S3cr3t@h/x.csv?token=T0ken9: 404"),
        OSError(errno.ENOSPC, "No space left on device", "http://alice:S3cr3t@h/x?token=T0ken9"),
    ],
    ids=["pipeline-error", "disk-error"],
)
def test_error_lines_mask_credentials_in_urls(tmp_path, capsys, error):
    assert run_raising(tmp_path, error) == 2

    err = capsys.readouterr().err
    assert "http://***@h/x" in err
    assert "S3cr3t" not in err
    assert "T0ken9" not in err


def test_a_stage_that_ends_well_reports_its_time_and_own_peak_memory(tmp_path):
    """TABML_STAGE_STATS gets one JSON line per stage (what `make bench-scale` reads). The
    stage runs here the way dvc runs it, exec'd by a bigger process (dvc's shell execs the
    command): the peak must be the stage's own, not the 600 MB its parent held."""
    import json
    import sys

    repo = Path(__file__).resolve().parents[2]
    stats = tmp_path / "stats.jsonl"
    parent = (
        "import os, sys\n"
        "held = bytearray(600 * 10**6)\n"
        "held[::4096] = b'x' * len(held[::4096])  # touch every page\n"
        "os.execv(sys.executable, [sys.executable, '-m', 'stages.check_params'])\n"
    )
    env = {**os.environ, "TABML_STAGE_STATS": str(stats)}
    proc = subprocess.run(
        [sys.executable, "-c", parent], cwd=repo, env=env, capture_output=True, text=True
    )

    assert proc.returncode == 0, proc.stderr
    (line,) = stats.read_text().splitlines()
    record = json.loads(line)
    assert record["stage"] == "check-params"
    assert 0 < record["seconds"] < 120
    assert 5e6 < record["peak_rss_bytes"] < 400e6
    assert "check-params done in" in proc.stderr and "peak memory" in proc.stderr
