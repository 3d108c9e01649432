"""All serving configuration, read from ``SERVING_*`` environment variables (pydantic-settings).

| variable                    | default       | meaning                                        |
|-----------------------------|---------------|------------------------------------------------|
| ``SERVING_ROOT``            | current dir   | project root: params, dvc.lock, models/ ...    |
| ``SERVING_PARAMS``          | params.yaml   | params file, relative to the root              |
| ``SERVING_MAX_ROWS``        | 10000         | rows per /predict or /validate request         |
| ``SERVING_MAX_UPLOAD_MB``   | 20            | request body size (JSON or CSV upload)         |
| ``SERVING_FAST_PATH``       | 1             | 0 disables the numpy fast path (see fastpath)  |
| ``SERVING_RELOAD_TOKEN``    | unset         | bearer token of POST /reload, which is off     |
|                             |               | while unset; 16+ characters; never logged      |
| ``SERVING_BODY_TIMEOUT``    | 30            | seconds to send a whole request body (408)     |
| ``SERVING_MAX_INFLIGHT_MB`` | 4 x upload MB | body bytes held across concurrent requests     |
|                             |               | (503 with Retry-After beyond)                  |

An empty variable counts as unset. A bad value raises :class:`SettingsError` naming the
variable (never echoing the value of a secret one).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import (
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
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
SECRETS = {"reload_token"}  # their values never appear in an error message
MIN_TOKEN_LENGTH = 16


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
    reload_token: SecretStr | None = None
    body_timeout: PositiveFloat = 30.0
    max_inflight_mb: PositiveFloat | None = None

    @field_validator("reload_token", mode="after")
    @classmethod
    def _token(cls, token: SecretStr | None) -> SecretStr | None:
        """A guessable token would open /reload to anyone: refuse short ones."""
        if token is None:
            return None
        value = token.get_secret_value().strip()
        if len(value) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"must be at least {MIN_TOKEN_LENGTH} characters; make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return SecretStr(value)

    @field_validator("max_inflight_mb", mode="after")
    @classmethod
    def _inflight(cls, value: float | None, info: ValidationInfo) -> float | None:
        """Below one upload, a single allowed request could never be read."""
        upload = info.data.get("max_upload_mb")
        if value is not None and upload is not None and value < upload:
            raise ValueError(f"must be at least SERVING_MAX_UPLOAD_MB ({upload:g})")
        return value

    @property
    def params_path(self) -> Path:
        """The params file; a relative path is relative to the root, like the stages' paths."""
        return self.params_file if self.params_file.is_absolute() else self.root / self.params_file

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def max_inflight_bytes(self) -> int:
        """Request-body bytes all concurrent requests may hold: by default four uploads."""
        mb = self.max_inflight_mb if self.max_inflight_mb is not None else 4 * self.max_upload_mb
        return int(mb * MB)

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from the environment; a bad value raises naming the variable."""
        try:
            return cls()
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            field = str(error["loc"][0])
            name = field.upper() if field.startswith("SERVING_") else f"SERVING_{field.upper()}"
            if error["type"] == "value_error":
                reason = str(error["ctx"]["error"])
            else:
                reason = _EXPECTED.get(error["type"], error["msg"])
            if field.lower().removeprefix("serving_") in SECRETS:
                raise SettingsError(f"{name}: {reason}") from None
            raise SettingsError(f"{name}={error.get('input')!r}: {reason}") from None
