"""The model catalogue of conf/datasets/<dataset>/models.yaml: what the steps train and judge,
checked when the config loads, with errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from models.metrics import CATALOGUE, GREATER_IS_BETTER
from pipelines.platform.config import load_config
from pipelines.platform.errors import ConfigError
from pipelines.platform.step import StepContext
from pipelines.release.evaluate import EVALUATE
from pipelines.training.deep import TRAIN_DEEP
from pipelines.training.regression import TRAIN_REGRESSION, declared_tasks
from pipelines.training.sequence import TRAIN_SEQUENCE

REGRESSIONS = {
    "delay-minutes": {"trainer": "linear", "table": "flight_features", "label": "arr_delay",
                      "metric": "rmse"},
    "delay-odds": {"trainer": "logistic", "table": "flight_features", "label": "is_delayed",
                   "metric": "auc"},
}


def with_catalogue(conf: Path, models: dict) -> Path:
    """Replace the flights dataset's catalogue; returns its file."""
    path = conf / "datasets" / "flights" / "models.yaml"
    path.write_text(yaml.safe_dump({"models": models}, sort_keys=False))
    return path


def test_the_steps_train_and_judge_what_the_catalogue_declares(project_conf: Path) -> None:
    with_catalogue(project_conf, REGRESSIONS)
    config = load_config(env="base", conf_dir=project_conf, overrides=["data_root=/tmp/x"])

    tasks = declared_tasks(config)

    assert [(t.model_name, t.short, t.label, t.link) for t in tasks] == [
        ("delay-minutes", "linear", "arr_delay", "identity"),
        ("delay-odds", "logistic", "is_delayed", "logit")]
    assert TRAIN_REGRESSION.inputs(config) == ["/tmp/x/lake/silver/flight_features"]
    assert EVALUATE.inputs(config)[0] == "/tmp/x/lake/silver/flight_features"
    assert "models:/delay-odds@candidate" in EVALUATE.inputs(config)
    # No mlp or sequence model: their steps have no input and train nothing.
    assert TRAIN_DEEP.inputs(config) == [] and TRAIN_SEQUENCE.inputs(config) == []
    result = TRAIN_DEEP.run(StepContext(config, run_id="r"))
    assert result.models == {} and "declares no mlp model" in result.headline


@pytest.mark.parametrize(("models", "key", "says"), [
    ({**REGRESSIONS, "delay-minutes": {**REGRESSIONS["delay-minutes"], "metric": "auc"}},
     "models.delay-minutes.metric", "'auc' cannot judge what the linear trainer predicts; use "
                                  "one of rmse, mae, r2"),
    ({**REGRESSIONS, "delay-minutes-2": REGRESSIONS["delay-minutes"]},
     "models.delay-minutes-2.trainer", "a second linear model after 'delay-minutes'"),
    ({**REGRESSIONS, "delay-odds": {**REGRESSIONS["delay-odds"], "table": "other"}},
     "models.delay-odds.table", "must share a table, got flight_features and other"),
    ({"delay-minutes": {**REGRESSIONS["delay-minutes"], "trainer": "forest"}},
     "models.delay-minutes.trainer", "Input should be 'linear', 'logistic', 'mlp' or 'sequence'"),
    ({"delay-minutes": {"trainer": "linear", "table": "t", "metric": "rmse"}},
     "models.delay-minutes.label", "required key is missing"),
    ({"delay-minutes": {**REGRESSIONS["delay-minutes"], "hyperparameters": {}}},
     "models.delay-minutes.hyperparameters", "unknown key"),
    ({"delay-minutes": {**REGRESSIONS["delay-minutes"], "params": {"epochs": 3}}},
     "models.delay-minutes.params.epochs", "not a key of train_regression"),
    ({"delay-minutes": {**REGRESSIONS["delay-minutes"], "params": {"max_iter": 0}}},
     "models.delay-minutes.params.max_iter", "Input should be greater than 0"),
])
def test_a_bad_catalogue_names_its_file_and_key(project_conf: Path, models: dict, key: str,
                                                says: str) -> None:
    path = with_catalogue(project_conf, models)

    with pytest.raises(ConfigError) as info:
        load_config(env="base", conf_dir=project_conf)

    assert f"{path}: {key}: " in str(info.value) and says in str(info.value), str(info.value)


def test_a_model_s_params_replace_its_trainer_s_section_for_it_alone(project_conf: Path) -> None:
    with_catalogue(project_conf, {
        **REGRESSIONS,
        "delay-odds": {**REGRESSIONS["delay-odds"], "params": {"reg_params": [0.5]}},
        "delay-mlp": {"trainer": "mlp", "table": "flight_features", "label": "is_delayed",
                      "metric": "auc", "params": {"epochs": 2, "hidden_units": [32]}}})
    config = load_config(env="base", conf_dir=project_conf)

    assert config.hyperparameters("delay-odds").reg_params == [0.5]
    assert config.hyperparameters("delay-minutes") == config.train_regression
    mlp = config.hyperparameters("delay-mlp")
    assert (mlp.epochs, mlp.hidden_units) == (2, [32])
    assert mlp.learning_rate == config.train_deep.learning_rate


def test_a_declaration_chooses_among_the_metrics_the_gate_judges(project_conf: Path) -> None:
    # Each trainer accepts exactly its family of models.metrics' catalogue, which promote's
    # gate reads its direction from.
    accepted = {}
    for metric in [*GREATER_IS_BETTER, "f1"]:
        models = {"delay-minutes": {**REGRESSIONS["delay-minutes"], "metric": metric}}
        with_catalogue(project_conf, models)
        try:
            load_config(env="base", conf_dir=project_conf)
            accepted[metric] = True
        except ConfigError:
            accepted[metric] = False
    assert [m for m, ok in accepted.items() if ok] == list(CATALOGUE["regression"])
