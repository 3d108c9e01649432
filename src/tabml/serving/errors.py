"""Errors a client (or a CLI user) can fix, each with the HTTP status the API answers with.

Input that does not match a model's schema raises ``tabml.errors.SchemaError`` (422), the
pipeline's own error, so the API and the stages word schema problems the same way.
"""

from __future__ import annotations


class ServingError(Exception):
    """Base of every error caused by a request or by configuration, never by a bug."""

    status = 400


class InputError(ServingError):
    """The request's content cannot be used (empty or unreadable CSV, bad values)."""

    status = 422


class NotFoundError(ServingError):
    """Unknown model id or dataset."""

    status = 404


class TooLargeError(ServingError):
    """More rows or bytes than the configured limits allow."""

    status = 413


class UnavailableError(ServingError):
    """No model is loaded (yet): the pipeline has not run, or loading failed."""

    status = 503


class SettingsError(ServingError):
    """An environment variable holds a value the server cannot use."""
