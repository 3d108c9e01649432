"""featurize@<dataset>: fit the preprocessing on the train split only and apply it to both.

Writes to ``data/processed/<dataset>/``: the processed train and test CSVs (feature columns,
then the target encoded 1 for the positive class) and the fitted transformer with the raw
input schema, which every model of this dataset embeds.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stages.common import (
    Layout,
    read_csv,
    replace_dir,
    run_stage,
    stage_parser,
    write_csv,
    write_pickle,
)
from stages.errors import DataError
from stages.model import ColumnSpec, conform, encode_target, infer_schema, negative_class
from stages.params import DatasetParams, FeaturizeParams, Params

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer

log = logging.getLogger("stages.featurize")


def build_transformer(schema: list[ColumnSpec], params: FeaturizeParams) -> ColumnTransformer:
    """Imputation and scaling for numbers, imputation and one-hot encoding for categories."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c.name for c in schema if c.kind == "numeric"]
    categorical = [c.name for c in schema if c.kind == "categorical"]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy=params.numeric_imputer, add_indicator=True))
        ]
        if params.scale_numeric:
            steps.append(("scale", StandardScaler()))
        parts.append(("num", Pipeline(steps), numeric))
    if categorical:
        rare = params.min_category_frequency > 1
        encoder = OneHotEncoder(
            handle_unknown="infrequent_if_exist" if rare else "ignore",
            min_frequency=params.min_category_frequency if rare else None,
            sparse_output=False,
        )
        impute = (
            SimpleImputer(strategy="constant", fill_value="missing")
            if params.categorical_imputer == "constant"
            else SimpleImputer(strategy="most_frequent")
        )
        parts.append(("cat", Pipeline([("impute", impute), ("onehot", encoder)]), categorical))
    return ColumnTransformer(parts, remainder="drop")


def featurize(
    train: pd.DataFrame, test: pd.DataFrame, spec: DatasetParams, params: FeaturizeParams
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Core: fit on ``train`` only; return processed train, processed test and the bundle."""
    import pandas as pd

    inputs = train.drop(columns=[spec.target, *spec.drop_columns], errors="ignore")
    if inputs.shape[1] == 0:
        raise DataError(f"no input columns left besides the target {spec.target!r}")
    all_missing = [c for c in inputs.columns if inputs[c].isna().all()]
    if all_missing:
        raise DataError(
            f"column {all_missing[0]!r} is empty in the train split: add it to drop_columns"
        )
    schema = infer_schema(inputs)
    transformer = build_transformer(schema, params)
    transformer.fit(conform(inputs, schema))
    names = [str(n) for n in transformer.get_feature_names_out()]

    def apply(rows: pd.DataFrame) -> pd.DataFrame:
        features = transformer.transform(conform(rows, schema, strict_categories=False))
        out = pd.DataFrame(features, columns=names)
        out[spec.target] = encode_target(rows[spec.target], spec.positive_class).to_numpy()
        return out

    bundle = {
        "transformer": transformer,
        "schema": schema,
        "feature_names": names,
        "target": spec.target,
        "classes": (negative_class(train[spec.target], spec.positive_class), spec.positive_class),
    }
    return apply(train), apply(test), bundle


def _main(args: argparse.Namespace, params: Params, layout: Layout) -> None:
    name, spec = args.dataset, params.dataset(args.dataset)
    train = read_csv(layout.interim(name, "train", spec.snapshot), low_memory=False)
    test = read_csv(layout.interim(name, "test", spec.snapshot), low_memory=False)
    processed_train, processed_test, bundle = featurize(train, test, spec, params.featurize)

    def write(tmp: Path) -> None:
        for part, frame in (("train", processed_train), ("test", processed_test)):
            write_csv(tmp / layout.processed(name, part, spec.snapshot).name, frame)
        write_pickle(tmp / layout.processed(name, "transformer", spec.snapshot, "pkl").name, bundle)

    replace_dir(layout.processed_dir(name), write)
    log.info(
        "wrote %s: %d features from %d input columns (train %d rows, test %d rows)",
        layout.processed_dir(name),
        len(bundle["feature_names"]),
        len(bundle["schema"]),
        len(processed_train),
        len(processed_test),
    )


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__.splitlines()[0], dataset=True)
    return run_stage(parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
