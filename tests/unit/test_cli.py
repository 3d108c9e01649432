"""The stage command line (tabml.cli): shared flags, one-line errors and exit code 2."""

from __future__ import annotations

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
