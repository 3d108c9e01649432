"""featurize@<dataset> on Dask: fit the pandas engine's transformer, apply it partition by
partition.

Writes to ``data/processed/<ds>/`` what the pandas engine writes there besides its ``.npz``
data: the fitted transformer and its :class:`tabml.features.FeatureSpec`
(:func:`tabml.features.save_features`), and the processed rows as Parquet partitions
``<ds>-<train|test>-<NNNNN>_processed_<date>.parquet`` (at most :data:`PART_ROWS` rows
each, in the order of the interim rows: the feature columns as float32, which XGBoost
computes in anyway, then the target encoded 1 for the positive class).

- Schema, from the WHOLE train split: one pass gathers each column's present values and,
  for text columns, the count of each distinct value (:func:`tabml.schema.text` rule);
  :func:`tabml.schema.infer_schema` then reads a column of those distinct values, so the
  kinds and categories are the ones the pandas engine finds on the full split. Empty
  columns and row-id-like columns are refused or dropped by the pandas engine's rules.
- Fit: :func:`tabml.features.build_transformer` (dense output: the Parquet features are
  dense, and the served pipeline must compute what training read) on a bounded sample:
  all train rows up to :data:`FIT_ROWS`, else a seeded sample of that size plus, for each
  category the sample lacks, the first train row holding it. So every category of the
  full split is known to the encoder; which categories count as rare
  (``min_category_frequency``, ``max_categories``) is judged on the sample, where a
  category missing from a 100,000-row sample is rare in the whole split too.
- Apply: every partition is validated by :func:`tabml.schema.conform` (train: categories
  seen; test: unseen categories allowed, as the pandas engine), transformed and written by
  the worker holding it. A validation error names the partition file and its row.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.errors import DataError, SchemaError

if TYPE_CHECKING:
    import pandas as pd

    from tabml.layout import Layout
    from tabml.params import Params
    from tabml.schema import ColumnSpec

log = logging.getLogger("tabml.daskengine.featurize")

# Rows the transformer is fitted on at most (plus one per category the sample lacks):
# medians, scales and category counts settle long before; fitting costs seconds.
FIT_ROWS = 100_000
# Rows per processed partition at most: features are dense (one-hot columns included), and
# a worker holds a partition, and the estimator's copies of it, in memory (100,000 rows of
# 250 float32 features: 100 MB).
PART_ROWS = 100_000


def read_part(path: str) -> pd.DataFrame:
    """Worker: one Parquet partition (text columns as object, as the pandas engine reads)."""
    import pandas as pd

    return pd.read_parquet(path)


def parts_frame(files: list[Path]) -> Any:
    """A dask DataFrame of Parquet partitions, exactly one partition per file, in order
    (its meta from the first file's schema, not its rows)."""
    import dask.dataframe as dd
    import pyarrow.parquet as pq

    meta = pq.read_schema(files[0]).empty_table().to_pandas()
    return dd.from_map(read_part, [str(f.resolve()) for f in files], meta=meta)


def value_stats(part: pd.DataFrame, columns: list[str], target: str) -> dict[str, Any]:
    """Worker: rows; per numeric column its present values; per text column the count of
    each value (text rule: blanks missing, numbers as their shortest text); target labels."""
    from tabml.daskengine.frames import text_counts

    numeric, counts = {}, {}
    for name in columns:
        column = part[name]
        if column.dtype.kind in "iuf":
            numeric[name] = int(column.notna().sum())
        else:
            counts[name] = text_counts(column)
    labels = text_counts(part[target])
    return {"rows": len(part), "numeric": numeric, "counts": counts, "labels": labels}


def merge_stats(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """The :func:`value_stats` of the whole split."""
    numeric: Counter[str] = Counter()
    counts: dict[str, Counter[str]] = {}
    labels: Counter[str] = Counter()
    for part in stats:
        numeric.update(part["numeric"])
        for name, values in part["counts"].items():
            counts.setdefault(name, Counter()).update(values)
        labels.update(part["labels"])
    return {
        "rows": sum(p["rows"] for p in stats),
        "numeric": numeric,
        "counts": counts,
        "labels": labels,
    }


def whole_schema(meta: pd.DataFrame, columns: list[str], stats: dict[str, Any]) -> list[ColumnSpec]:
    """:func:`tabml.schema.infer_schema` of the whole split, from its statistics: numeric
    columns by their type, text columns from a column of their distinct values."""
    import pandas as pd

    from tabml.schema import infer_schema

    schema = []
    for name in columns:
        if name in stats["numeric"]:
            schema += infer_schema(meta[[name]])
        else:
            distinct = pd.Series(sorted(stats["counts"].get(name, {})), dtype=object)
            schema += infer_schema(pd.DataFrame({name: distinct}))
    return schema


def present_counts(stats: dict[str, Any]) -> dict[str, int]:
    """Each text column's count of present values in the whole split, from its value counts
    (what :func:`tabml.features.row_id_columns` judges row ids on)."""
    return {column: sum(counts.values()) for column, counts in stats["counts"].items()}


def _rows_with(part: pd.DataFrame, wanted: dict[str, list[str]]) -> pd.DataFrame:
    """Worker: the first row of this partition holding each wanted value of each column."""
    import pandas as pd

    from tabml.daskengine.frames import text_series

    found = []
    for name, values in wanted.items():
        texts = text_series(part[name])
        hits = texts[texts.isin(values)].drop_duplicates()
        found.append(part.loc[hits.index])
    return pd.concat(found) if found else part.iloc[:0]


def fitting_rows(
    client: Any, frame: Any, schema: list[ColumnSpec], rows: int, seed: int
) -> pd.DataFrame:
    """The rows the transformer is fitted on (see the module docstring), not validated."""
    import dask
    import pandas as pd

    from tabml.daskengine.frames import text_counts, text_series

    if rows <= FIT_ROWS:
        return frame.compute().reset_index(drop=True)
    sample = frame.sample(frac=FIT_ROWS / rows, random_state=seed).compute()
    wanted = {}
    for spec in schema:
        if spec.kind == "categorical":
            seen = set(text_counts(sample[spec.name]))
            missing = [c for c in spec.categories if c not in seen]
            if missing:
                wanted[spec.name] = missing
    if not wanted:
        return sample.reset_index(drop=True)
    found = dask.compute(*[dask.delayed(_rows_with)(p, wanted) for p in frame.to_delayed()])
    extra = pd.concat(found).reset_index(drop=True)
    keep: set[int] = set()  # the first row per missing value, over the partitions in order
    for name, values in wanted.items():
        texts = text_series(extra[name])
        keep.update(texts[texts.isin(values)].drop_duplicates().index)
    picked = extra.loc[sorted(keep)]
    log.info(
        "fitting the transformer on %d sampled train rows and %d rows holding categories the "
        "sample lacks",
        len(sample),
        len(picked),
    )
    return pd.concat([sample, picked], ignore_index=True)


def chunks(rows: int) -> int:
    """How many processed partitions an interim partition of ``rows`` rows makes."""
    return max(1, -(-rows // PART_ROWS))


def transform_part(
    part: pd.DataFrame,
    schema: list[ColumnSpec],
    transformer: Any,
    names: list[str],
    target: str,
    positive: str,
    strict: bool,
    source: str,
    outs: list[str],
) -> int:
    """Worker: validate one partition, then transform and write it :data:`PART_ROWS` rows
    at a time, one file of ``outs`` each (:func:`chunks`); its row count."""
    import numpy as np
    import pandas as pd

    from tabml.schema import conform
    from tabml.target import encode_target

    try:
        rows = conform(part, schema, strict_categories=strict)
    except SchemaError as exc:
        raise DataError(f"{source}: {exc}") from None
    labels = encode_target(part[target], positive).to_numpy()
    for k, out in enumerate(outs):
        chunk = rows.iloc[k * PART_ROWS : (k + 1) * PART_ROWS]
        features = np.empty((0, len(names)), dtype=np.float32)
        if len(chunk):
            features = np.asarray(transformer.transform(chunk), dtype=np.float32)
        frame = pd.DataFrame(features, columns=names)
        frame[target] = labels[k * PART_ROWS : (k + 1) * PART_ROWS]
        frame.to_parquet(out, index=False)
    return len(rows)


def parts_md5(files: list[Path]) -> str:
    """One md5 for a split's partitions: of the lines ``<name> <md5>`` in file order."""
    import hashlib

    from tabml.files import md5_file

    lines = "".join(f"{f.name} {md5_file(f)}\n" for f in files)
    return hashlib.md5(lines.encode(), usedforsecurity=False).hexdigest()


def featurize(name: str, params: Params, layout: Layout) -> None:
    """Featurize dataset ``name`` with the Dask engine (see the module docstring)."""
    import dask
    import pandas as pd
    import pyarrow.parquet as pq

    from tabml.daskengine.cluster import compute, dask_client
    from tabml.features import (
        DataInfo,
        FeatureSpec,
        build_transformer,
        check_input_columns,
        check_rows,
        row_id_columns,
        save_features,
        without_row_ids,
    )
    from tabml.files import replace_dir
    from tabml.schema import conform
    from tabml.target import negative_class

    spec = params.dataset(name)
    date = spec.snapshot
    files = {part: layout.interim_parts(name, part, date) for part in ("train", "test")}
    for part, found in files.items():
        if not found:
            raise DataError(
                f"{layout.interim_dir(name)} holds no {part} partitions: run split first "
                "(dvc repro)"
            )
    with dask_client(params.dask) as client:
        train = parts_frame(files["train"])
        if spec.target not in train.columns:
            raise DataError(f"train split of {name!r} has no target column {spec.target!r}")
        drop = {spec.target, *spec.drop_columns}
        columns = [c for c in train.columns if c not in drop]
        check_input_columns(columns, name, spec)
        stats = merge_stats(
            compute(
                client,
                [dask.delayed(value_stats)(p, columns, spec.target) for p in train.to_delayed()],
                f"scan the train split of {name}",
                rows=lambda s: s["rows"],
            )
        )
        schema = whole_schema(train._meta, columns, stats)
        empty = [
            c.name
            for c in schema
            if (c.kind == "numeric" and not stats["numeric"].get(c.name))
            or (c.kind == "categorical" and not c.categories)
        ]
        if empty:
            raise DataError(
                f"column {empty[0]!r} is empty in the train split: add it to drop_columns"
            )
        fraction = params.featurize.max_unique_fraction
        found = row_id_columns(schema, present_counts(stats), fraction, spec.keep_columns)
        schema = without_row_ids(schema, found, name)
        fitted = conform(
            fitting_rows(client, train, schema, stats["rows"], params.split.seed), schema
        )
        transformer = build_transformer(schema, params.featurize, dense=True)
        transformer.fit(fitted)
        names = [str(n) for n in transformer.get_feature_names_out()]
        labels = pd.Series(sorted(stats["labels"]), dtype=object)
        features = FeatureSpec(
            dataset=name,
            columns=schema,
            feature_names=names,
            target=spec.target,
            classes=(negative_class(labels, spec.positive_class), spec.positive_class),
            data=DataInfo(
                snapshot=date,
                train_file=str(layout.interim_dir(name).relative_to(layout.root)),
                train_md5=parts_md5(files["train"]),
                train_rows=stats["rows"],
            ),
            check_rows=check_rows(fitted, schema),
        )
        shared = client.scatter(transformer, broadcast=True)
        rows: dict[str, int] = {}

        def write(tmp: Path) -> None:
            for part in ("train", "test"):
                frame = train if part == "train" else parts_frame(files[part])
                tasks, first = [], 0
                for i, p in enumerate(frame.to_delayed()):
                    n = chunks(pq.ParquetFile(files[part][i]).metadata.num_rows)
                    outs = [
                        str(tmp.resolve() / layout.processed_part(name, part, k, date).name)
                        for k in range(first, first + n)
                    ]
                    first += n
                    task = dask.delayed(transform_part)(
                        p,
                        schema,
                        shared,
                        names,
                        spec.target,
                        spec.positive_class,
                        part == "train",
                        str(files[part][i]),
                        outs,
                    )
                    tasks.append(task)
                rows[part] = sum(
                    compute(client, tasks, f"featurize the {part} split of {name}", rows=int)
                )
            save_features(layout, tmp, features, transformer)

        replace_dir(layout.processed_dir(name), write)
    log.info(
        "wrote %s: %d features from %d input columns (train %d rows, test %d rows, from %d + %d "
        "partitions)",
        layout.processed_dir(name),
        len(names),
        len(schema),
        rows["train"],
        rows["test"],
        len(files["train"]),
        len(files["test"]),
    )
