"""A small synthetic dataset with a clear signal, for the Dask tier: every kind of column
the readers handle (numbers with missing cells, integers, booleans, low- and
higher-cardinality categories, blank text cells), rows from one seeded generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "bought"
POSITIVE = "yes"


def frame(rows: int, seed: int) -> pd.DataFrame:
    """``rows`` rows; a different ``seed`` gives fresh rows of the same distribution."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    x2 = rng.uniform(-1, 1, size=rows)
    visits = rng.poisson(3, size=rows)
    level = rng.choice(["bronze", "silver", "gold", "platinum"], size=rows, p=[0.4, 0.3, 0.2, 0.1])
    city = np.array([f"city{i:02d}" for i in rng.integers(0, 40, size=rows)])
    member = rng.random(rows) < 0.5
    effect = {"bronze": -1.0, "silver": 0.0, "gold": 0.8, "platinum": 1.6}
    city_effect = np.array([(int(c[4:]) % 5 - 2) * 0.3 for c in city])
    logit = 1.6 * x1 + 1.2 * x2 + 0.15 * visits + np.vectorize(effect.get)(level)
    logit = logit + city_effect + 0.5 * member - 0.6 + rng.logistic(size=rows) * 0.6
    out = pd.DataFrame(
        {
            "x1": np.round(x1, 4),
            "x2": np.round(x2, 4),
            "visits": visits,
            "level": level,
            "city": city,
            "member": member,
            "note": rng.choice(["a", "b", " ", ""], size=rows),  # blank cells are missing
            TARGET: np.where(logit > 0, POSITIVE, "no"),
        }
    )
    out.loc[rng.random(rows) < 0.05, "x1"] = np.nan
    return out


def write(path: Path, rows: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame(rows, seed).to_csv(path, index=False)
    return path
