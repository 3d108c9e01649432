"""Errors a user can fix: the CLI prints them as one line and exits 2, without a traceback."""


class PipelineError(Exception):
    """Base for every error caused by params, data or files rather than by a bug."""


class ParamsError(PipelineError):
    """params.yaml (or a --set-param) holds an unknown key or a bad value."""


class DataError(PipelineError):
    """A source or an intermediate file cannot be used as it is."""


class SchemaError(DataError):
    """Rows handed to a model do not match the schema it was trained on."""


class ModelFileError(PipelineError):
    """A model file or its card cannot be trusted or used (not vouched for, damaged, stale)."""
