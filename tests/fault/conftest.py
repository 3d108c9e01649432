"""Fault injection: every test here is marked ``fault`` (``pytest -m fault`` runs the tier)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/fault/" in str(item.fspath):
            item.add_marker(pytest.mark.fault)
