"""featurize@<dataset>: fit the preprocessing on the train split only and apply it to both.

Writes to ``data/processed/<dataset>/``: the processed train and test data as ``.npz``
(:func:`tabml.features.save_matrix`: the feature matrix, sparse when one-hot columns make it
mostly zeros, and the target encoded 1 for the positive class), the fitted transformer and its
typed description (:class:`tabml.features.FeatureSpec`), which every model of this dataset
embeds.
Text columns that look like row ids (nearly every value distinct) are left out with a warning
unless ``keep_columns`` lists them (:func:`tabml.features.row_id_columns`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabml.cli import run_stage, stage_parser
from tabml.csvfile import CsvOptions, read_dataset
from tabml.errors import DataError
from tabml.files import md5_file, replace_dir
from tabml.schema import conform, infer_schema
from tabml.target import encode_target, negative_class

if TYPE_CHECKING:
    import pandas as pd

    from tabml.features import DataInfo, FeatureSpec
    from tabml.layout import Layout
    from tabml.params import DatasetParams, FeaturizeParams, Params

log = logging.getLogger("stages.featurize")
Processed = tuple[Any, Any]  # (features: CSR matrix or ndarray, labels: 0/1 ndarray)


def featurize(
    train: pd.DataFrame,
    test: pd.DataFrame,
    name: str,
    spec: DatasetParams,
    params: FeaturizeParams,
    data: DataInfo,
) -> tuple[Processed, Processed, FeatureSpec, Any]:
    """Core: fit on ``train`` only; return processed train and test (features, 0/1 labels),
    the spec and the fitted transformer."""
    from tabml.features import (
        FeatureSpec,
        build_transformer,
        check_input_columns,
        check_rows,
        row_id_columns,
        without_row_ids,
    )

    inputs = train.drop(columns=[spec.target, *spec.drop_columns], errors="ignore")
    check_input_columns(list(inputs.columns), name, spec)
    schema = infer_schema(inputs)
    # Empty: all NaN, or (text) nothing but blanks, which validation reads as missing too.
    empty = [
        c.name
        for c in schema
        if (c.kind == "numeric" and inputs[c.name].isna().all())
        or (c.kind == "categorical" and not c.categories)
    ]
    if empty:
        raise DataError(f"column {empty[0]!r} is empty in the train split: add it to drop_columns")
    fitted_rows = conform(inputs, schema)  # validated once: fitted on, then transformed
    present = {
        c.name: int(fitted_rows[c.name].notna().sum()) for c in schema if c.kind == "categorical"
    }
    found = row_id_columns(schema, present, params.max_unique_fraction, spec.keep_columns)
    schema = without_row_ids(schema, found, name)
    fitted_rows = fitted_rows.drop(columns=[c[0] for c in found])
    transformer = build_transformer(schema, params)
    train_features = transformer.fit_transform(fitted_rows)  # one pass: fit and encode
    names = [str(n) for n in transformer.get_feature_names_out()]

    def labels(rows: pd.DataFrame) -> Any:
        return encode_target(rows[spec.target], spec.positive_class).to_numpy()

    features = FeatureSpec(
        dataset=name,
        columns=schema,
        feature_names=names,
        target=spec.target,
        classes=(negative_class(train[spec.target], spec.positive_class), spec.positive_class),
        data=data,
        check_rows=check_rows(fitted_rows, schema),
    )
    # Test categories training never saw are allowed: they encode as all zeros.
    test_rows = conform(test, schema, strict_categories=False)
    processed_test = (transformer.transform(test_rows), labels(test))
    return (train_features, labels(train)), processed_test, features, transformer


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    from tabml.features import DataInfo, save_features, save_matrix

    name, spec = args.dataset, params.dataset(args.dataset)
    if spec.engine == "dask":
        from tabml.daskengine.featurize import featurize as dask_featurize

        return dask_featurize(name, params, layout)
    train_path = layout.interim(name, "train", spec.snapshot)
    options = CsvOptions.of(spec)  # interim files keep the source's format (ingest)
    train = read_dataset(train_path, options)
    test = read_dataset(layout.interim(name, "test", spec.snapshot), options)
    data = DataInfo(
        snapshot=spec.snapshot,
        train_file=str(train_path.relative_to(layout.root)),
        train_md5=md5_file(train_path),
        train_rows=len(train),
    )
    processed_train, processed_test, features, transformer = featurize(
        train, test, name, spec, params.featurize, data
    )

    def write(tmp: Path) -> None:
        for part, (X, y) in (("train", processed_train), ("test", processed_test)):
            save_matrix(tmp / layout.processed(name, part, spec.snapshot, "npz").name, X, y)
        save_features(layout, tmp, features, transformer)

    replace_dir(layout.processed_dir(name), write)
    X = processed_train[0]
    log.info(
        "wrote %s: %d features from %d input columns (%s; train %d rows, test %d rows)",
        layout.processed_dir(name),
        len(features.feature_names),
        len(features.columns),
        "sparse" if hasattr(X, "nnz") else "dense",
        X.shape[0],
        processed_test[0].shape[0],
    )


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("python -m stages.featurize", __doc__.splitlines()[0], dataset=True)
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
