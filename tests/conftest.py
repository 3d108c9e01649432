"""Run the fast tiers first, so a person watching `make test` sees progress early."""

from __future__ import annotations

import os

import pytest

# As the stages do (tabml.cli.run_stage): OpenMP threads sleep while waiting, so in-process
# xgboost fits do not crawl while the other test process keeps both cores busy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Directory under tests/ -> order; unknown directories run between serving and fault.
TIERS = ("unit", "serving", "fault", "pipeline", "dask", "remote")


def _tier(item: pytest.Item) -> int:
    parts = item.nodeid.split("/")
    name = parts[1] if len(parts) > 2 and parts[0] == "tests" else ""
    return TIERS.index(name) if name in TIERS else TIERS.index("fault")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Stable: within a tier, the collection order (file, then definition order) is kept.
    items.sort(key=_tier)
