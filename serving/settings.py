"""All serving configuration in one place, read from environment variables.

| variable                | default          | meaning                                        |
|-------------------------|------------------|------------------------------------------------|
| ``SERVING_ROOT``        | current dir      | repository root: params.yaml, models/, metrics/ |
| ``SERVING_PARAMS``      | ``params.yaml``  | params file, relative to the root              |
| ``SERVING_MAX_ROWS``    | 10000            | rows per /predict or /validate request         |
| ``SERVING_MAX_UPLOAD_MB`` | 20             | request body size (JSON or CSV upload)         |
| ``SERVING_FAST_PATH``   | 1                | 0 disables the numpy fast path (see fastpath)  |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from serving.errors import SettingsError

MB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Where the project lives and the limits every request is held to."""

    root: Path = Path(".")
    params_file: Path = Path("params.yaml")
    max_rows: int = 10_000
    max_upload_mb: float = 20.0
    fast_path: bool = True

    def __post_init__(self) -> None:
        if self.max_rows < 1:
            raise SettingsError(f"max_rows = {self.max_rows}: must be at least 1")
        if not self.max_upload_mb > 0:
            raise SettingsError(f"max_upload_mb = {self.max_upload_mb}: must be positive")

    @property
    def params_path(self) -> Path:
        """The params file; a relative path is relative to the root, like the stages' paths."""
        return self.params_file if self.params_file.is_absolute() else self.root / self.params_file

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``SERVING_*`` variables; a bad value raises naming the variable."""
        env = os.environ if environ is None else environ
        return cls(
            root=Path(env.get("SERVING_ROOT") or "."),
            params_file=Path(env.get("SERVING_PARAMS") or "params.yaml"),
            max_rows=_number(env, "SERVING_MAX_ROWS", int, cls.max_rows),
            max_upload_mb=_number(env, "SERVING_MAX_UPLOAD_MB", float, cls.max_upload_mb),
            fast_path=_flag(env, "SERVING_FAST_PATH", cls.fast_path),
        )


def _number(env: Mapping[str, str], name: str, kind: type, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r}: expected a {kind.__name__}") from None
    if not value > 0:
        raise SettingsError(f"{name}={text!r}: must be positive")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={text!r}: expected 1 or 0")
