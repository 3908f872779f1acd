"""Feature views, labels, splits, encodings and the model catalogue declared in conf/datasets/:
a bad declaration fails when the config loads, before any Spark job, naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.platform.config import load_config
from pipelines.platform.errors import ConfigError

FLIGHTS_FEATURES = "conf/datasets/flights/features.yaml"


def config_error(conf: Path, *overrides: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(env="base", conf_dir=conf, overrides=overrides)
    return str(info.value)


@pytest.mark.parametrize(("overrides", "expected"), [
    (["features.categorical.distance={}"],
     "features.categorical.distance: is also numeric; declare it as one or the other"),
    (["features.request.dep_delay=float64", "features.numeric=[distance, dep_delay]"],
     "features.numeric.dep_delay: is declared as leakage (known only after the fact), so it "
     "cannot be a feature"),
    (["features.numeric=[distance, arrival_gate]"],
     "features.numeric.arrival_gate: neither a request column nor derived"),
    (["features.categorical.distance={}", "features.numeric=[temp]"],
     "features.categorical.distance: must be a string in request, not float64"),
    (["features.request.sched_dep_local=string"],
     "features.request.sched_dep_local: the flights derivation reads sched_dep_local as "
     "datetime64[ns]"),
    (["features.validation_end=2013-09-30"],
     "features.validation_end: 2013-09-30 is not after train_end 2013-09-30: the validation "
     "split would be empty"),
    (["features.labels.is_delayed=arr_delay >"], "features.labels.is_delayed: not a valid SQL"),
    (["features.view.function=pipelines.features.flights"],
     "features.view.function: 'pipelines.features.flights' is not an import path"),
    (["features.view.sql=SELECT * FROM flights JOIN gates USING (flight)"],
     "features.view: give exactly one of sql"),
    (["sequences.target=visibility"],
     "sequences.target: 'visibility' is not one of the steps"),
    (["features.hashed.tailnum=0"], "features.hashed.tailnum: 0 buckets"),
    (["features.view.inputs=[flights, weather, airports]"],
     "features.view.inputs: the flights derivation fits its lookup from planes; add it to "
     "the inputs"),
])
def test_a_bad_feature_declaration_names_the_key(project_conf: Path, overrides: list[str],
                                                 expected: str) -> None:
    assert expected in config_error(project_conf, *overrides)


def test_a_view_reading_an_undeclared_table_is_named(project_conf: Path) -> None:
    message = config_error(project_conf, "features.view.function=null",
                           "features.view.sql=SELECT * FROM flights JOIN gates USING (flight)")
    assert "features.view.sql: reads gates, which is not among its inputs" in message

    message = config_error(project_conf,
                           "features.view.inputs=[flights, weather, planes, airports, gates]")
    assert "features.view.inputs: gates is not a declared source" in message


def test_the_error_names_the_file_that_declared_the_key(project_conf: Path) -> None:
    path = project_conf / "datasets" / "flights" / "features.yaml"
    path.write_text(path.read_text().replace("  numeric: [distance,", "  numeric: [carrier,"))

    message = config_error(project_conf)

    assert f"{path}: features.categorical.carrier: is also numeric" in message


@pytest.mark.parametrize(("overrides", "expected"), [
    (["models.flight-delay-logistic.label=is_late"],
     "models.flight-delay-logistic.label: 'is_late' is not a label of flight_features; "
     "features.labels declares arr_delay, is_delayed"),
    (["models.flight-delay-mlp.table=flight_features_v2"],
     "models.flight-delay-mlp.table: 'flight_features_v2' is not a table the mlp trainer can "
     "learn from; the features step builds flight_features"),
    (["models.origin-delay-forecast.table=flight_features"],
     "models.origin-delay-forecast.table: 'flight_features' is not a table the sequence "
     "trainer can learn from; the features step builds origin_hourly_sequences"),
    (["models.origin-delay-forecast.label=mean_dep_delay"],
     "models.origin-delay-forecast.label: the sequence table's label is 'target'"),
])
def test_a_model_whose_table_or_label_nothing_builds_is_refused(
        project_conf: Path, overrides: list[str], expected: str) -> None:
    assert expected in config_error(project_conf, *overrides)


def test_the_second_dataset_declares_a_sql_view_and_all_four_model_kinds(
        project_conf: Path) -> None:
    config = load_config(env="base", conf_dir=project_conf,
                         overrides=["dataset=seattle_weather"])

    assert config.features.view.sql and config.features.view.inputs == ["daily_weather"]
    assert {m.trainer for m in config.models.values()} == {"linear", "logistic", "mlp",
                                                           "sequence"}
    assert config.experiment_name == "mlpipe-seattle_weather"
    assert config.features.derived == ()
