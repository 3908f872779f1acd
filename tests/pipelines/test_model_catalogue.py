"""The model catalogue of conf/datasets/<dataset>/models.yaml: what the steps train and judge,
checked when the config loads, with errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.platform.config import load_config
from pipelines.platform.errors import ConfigError
from pipelines.platform.step import StepContext
from pipelines.release.evaluate import EVALUATE
from pipelines.training.deep import TRAIN_DEEP
from pipelines.training.regression import TRAIN_REGRESSION, declared_tasks
from pipelines.training.sequence import TRAIN_SEQUENCE

REGRESSIONS = {
    "meter-usage": {"trainer": "linear", "table": "readings_features", "label": "kwh",
                    "metric": "rmse"},
    "meter-outage": {"trainer": "logistic", "table": "readings_features", "label": "outage",
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
        ("meter-usage", "linear", "kwh", "identity"),
        ("meter-outage", "logistic", "outage", "logit")]
    assert TRAIN_REGRESSION.inputs(config) == ["/tmp/x/lake/silver/readings_features"]
    assert EVALUATE.inputs(config)[0] == "/tmp/x/lake/silver/readings_features"
    assert "models:/meter-outage@candidate" in EVALUATE.inputs(config)
    # No mlp or sequence model: their steps have no input and train nothing.
    assert TRAIN_DEEP.inputs(config) == [] and TRAIN_SEQUENCE.inputs(config) == []
    result = TRAIN_DEEP.run(StepContext(config, run_id="r"))
    assert result.models == {} and "declares no mlp model" in result.headline


@pytest.mark.parametrize(("models", "key", "says"), [
    ({**REGRESSIONS, "meter-usage": {**REGRESSIONS["meter-usage"], "metric": "auc"}},
     "models.meter-usage.metric", "'auc' cannot judge what the linear trainer predicts; use "
                                  "one of rmse, mae, r2"),
    ({**REGRESSIONS, "meter-usage-2": REGRESSIONS["meter-usage"]},
     "models.meter-usage-2.trainer", "a second linear model after 'meter-usage'"),
    ({**REGRESSIONS, "meter-outage": {**REGRESSIONS["meter-outage"], "table": "other"}},
     "models.meter-outage.table", "must share a table, got readings_features and other"),
    ({"meter-usage": {**REGRESSIONS["meter-usage"], "trainer": "forest"}},
     "models.meter-usage.trainer", "Input should be 'linear', 'logistic', 'mlp' or 'sequence'"),
    ({"meter-usage": {"trainer": "linear", "table": "t", "metric": "rmse"}},
     "models.meter-usage.label", "required key is missing"),
    ({"meter-usage": {**REGRESSIONS["meter-usage"], "hyperparameters": {}}},
     "models.meter-usage.hyperparameters", "unknown key"),
])
def test_a_bad_catalogue_names_its_file_and_key(project_conf: Path, models: dict, key: str,
                                                says: str) -> None:
    path = with_catalogue(project_conf, models)

    with pytest.raises(ConfigError) as info:
        load_config(env="base", conf_dir=project_conf)

    assert f"{path}: {key}: " in str(info.value) and says in str(info.value), str(info.value)
