"""All serving configuration, read from ``SERVING_*`` environment variables (pydantic-settings).

| variable                  | default         | meaning                                           |
|---------------------------|-----------------|---------------------------------------------------|
| ``SERVING_ROOT``          | current dir     | project root: params, dvc.lock, models/, metrics/ |
| ``SERVING_PARAMS``        | ``params.yaml`` | params file, relative to the root                 |
| ``SERVING_MAX_ROWS``      | 10000           | rows per /predict or /validate request            |
| ``SERVING_MAX_UPLOAD_MB`` | 20              | request body size (JSON or CSV upload)            |
| ``SERVING_FAST_PATH``     | 1               | 0 disables the numpy fast path (see fastpath)     |

An empty variable counts as unset. A bad value raises :class:`SettingsError` naming the
variable.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PositiveFloat, PositiveInt, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from tabml.serving.errors import SettingsError

MB = 1024 * 1024
_EXPECTED = {
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_parsing": "expected a number",
    "bool_parsing": "expected 1 or 0",
    "greater_than": "must be positive",
}


class Settings(BaseSettings):
    """Where the project lives and the limits every request is held to."""

    model_config = SettingsConfigDict(
        env_prefix="SERVING_",
        env_ignore_empty=True,
        frozen=True,
        extra="ignore",
        populate_by_name=True,
    )

    root: Path = Path(".")
    params_file: Path = Field(Path("params.yaml"), validation_alias="SERVING_PARAMS")
    max_rows: PositiveInt = 10_000
    max_upload_mb: PositiveFloat = 20.0
    fast_path: bool = True

    @property
    def params_path(self) -> Path:
        """The params file; a relative path is relative to the root, like the stages' paths."""
        return self.params_file if self.params_file.is_absolute() else self.root / self.params_file

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from the environment; a bad value raises naming the variable."""
        try:
            return cls()
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            field = str(error["loc"][0])
            name = field.upper() if field.startswith("SERVING_") else f"SERVING_{field.upper()}"
            reason = _EXPECTED.get(error["type"], error["msg"])
            raise SettingsError(f"{name}={error.get('input')!r}: {reason}") from None
