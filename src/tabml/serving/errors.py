"""Errors a client (or a CLI user) can fix, each with the HTTP status the API answers with.

Input that does not match a model's schema raises ``tabml.errors.SchemaError`` (422), the
pipeline's own error, so the API and the stages word schema problems the same way.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServingError(Exception):
    """Base of every error caused by a request or by configuration, never by a bug."""

    status = 400
    headers: ClassVar[dict[str, str] | None] = None

    def body(self) -> dict[str, Any]:
        """The JSON the API answers with: ``{"detail": ...}``, plus what a subclass adds."""
        return {"detail": str(self)}


class InputError(ServingError):
    """The request's content cannot be used (empty or unreadable CSV, bad values)."""

    status = 422


class NotFoundError(ServingError):
    """Unknown model id or dataset."""

    status = 404


class TooLargeError(ServingError):
    """More rows or bytes than the configured limits allow."""

    status = 413


class ForbiddenError(ServingError):
    """The endpoint is switched off by configuration (``POST /reload`` without a token)."""

    status = 403


class UnauthorizedError(ServingError):
    """A missing or wrong bearer token."""

    status = 401
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": "Bearer"}


class ReloadRefused(ServingError):
    """The models on disk are not a complete set: the served ones stay (all or nothing)."""

    status = 409

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems

    def body(self) -> dict[str, Any]:
        return {"detail": str(self), "problems": self.problems}


class NoChampionError(ServingError):
    """The dataset's leaderboard promoted no model (the evaluate.min_score gate, or no
    cross-validated model): asking by dataset has no answer; a model id still works."""

    status = 409


class UnavailableError(ServingError):
    """No model is loaded (yet): the pipeline has not run, or loading failed."""

    status = 503


class SettingsError(ServingError):
    """An environment variable holds a value the server cannot use."""
