"""The Dask engine: every test here is marked ``dask`` (``pytest -m dask`` runs the tier)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/dask/" in str(item.fspath):
            item.add_marker(pytest.mark.dask)
