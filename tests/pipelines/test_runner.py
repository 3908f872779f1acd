"""The DAG runner: order, skipping unchanged steps, failure isolation, MLflow nesting."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from pipelines.orchestration.runner import (
    BLOCKED,
    FAILED,
    RAN,
    SKIPPED,
    format_outcomes,
    run_pipeline,
)
from pipelines.platform.config import Config
from pipelines.platform.errors import ConfigError
from pipelines.platform.preflight import check_services
from pipelines.platform.step import Step, StepContext, StepResult
from pipelines.platform.tracking import resolve_target
from tests.conftest import CONF_DIR, make_config
from tests.support.http_proxy import counting_proxy
from tests.support.processes import mlflow_server

DAG = {"load": [], "clean": ["load"], "report": ["clean"], "audit": ["load"]}


def conf_with_dag(folder: Path, dag: dict[str, list[str]]) -> Path:
    """A copy of conf/ whose pipeline declares ``dag`` (an overlay would merge, not replace)."""
    shutil.copytree(CONF_DIR, folder, ignore=shutil.ignore_patterns("local.yaml"))
    pipeline = yaml.safe_load((folder / "pipeline.yaml").read_text())
    pipeline["pipeline"]["steps"] = dag
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    return folder


def dag_config_at(tmp_path: Path, dag: dict[str, list[str]], *overrides: str) -> Config:
    conf_dir = tmp_path / "conf"
    if not conf_dir.exists():
        conf_with_dag(conf_dir, dag)
    return make_config(tmp_path / "data", *overrides, conf_dir=conf_dir)


class Recorder:
    """Steps that append their name to a log file when they run (and may be told to fail)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "ran.txt"
        self.failing: set[str] = set()
        # step name -> a file that lands in landing/ while it runs, after it has read
        self.landing_during: dict[str, str] = {}
        # step name -> a file it writes into landing/ itself, reporting the change
        self.writing_own_input: dict[str, str] = {}

    def step(self, name: str, reads: str) -> Step:
        return Step(name=name, run=lambda ctx: self._run(name, ctx), help=name,
                    config_sections=("seed",), inputs=lambda config: [str(self.folder / reads)])

    def _run(self, name: str, ctx: StepContext) -> StepResult:
        if name in self.failing:
            raise RuntimeError(f"{name} broke")
        with self.log.open("a") as handle:
            handle.write(name + "\n")
        (self.folder / f"{name}.out").mkdir(exist_ok=True)
        landing = self.folder / "landing"
        if name in self.landing_during:
            (landing / self.landing_during.pop(name)).write_text("late\n")
        changed = []
        if name in self.writing_own_input:
            (landing / self.writing_own_input.pop(name)).write_text("seeded\n")
            changed = [str(landing)]
        return StepResult(metrics={"rows": 3.0}, headline=f"{name} ok", changed=changed)

    def ran(self) -> list[str]:
        names = self.log.read_text().split() if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        return names

    def steps(self) -> list[Step]:
        (self.folder / "landing").mkdir(exist_ok=True)
        return [self.step("load", "landing"), self.step("clean", "load.out"),
                self.step("report", "clean.out"), self.step("audit", "load.out")]


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    return Recorder(tmp_path)


@pytest.fixture
def dag_config(tmp_path: Path) -> Config:
    yield dag_config_at(tmp_path, DAG)
    mlflow.set_tracking_uri(None)


def test_runs_in_dependency_order_then_skips_unchanged(dag_config: Config,
                                                       recorder: Recorder) -> None:
    steps = recorder.steps()
    outcomes = run_pipeline(dag_config, steps=steps)
    assert [o.status for o in outcomes] == [RAN] * 4
    ran = recorder.ran()
    assert ran.index("load") < ran.index("clean") < ran.index("report")

    again = run_pipeline(dag_config, steps=steps)
    assert [o.status for o in again] == [SKIPPED] * 4 and recorder.ran() == []
    assert again[0].headline == "load ok"

    (recorder.folder / "landing" / "new.csv").write_text("x\n")  # new data arrives
    outcomes = run_pipeline(dag_config, steps=steps)
    assert {o.name: o.status for o in outcomes}["load"] == RAN
    assert recorder.ran() == ["load"]


def test_a_file_that_lands_while_its_reader_runs_is_read_by_the_next_run(
        dag_config: Config, recorder: Recorder) -> None:
    steps = recorder.steps()
    recorder.landing_during["load"] = "2013-01-02.csv"
    run_pipeline(dag_config, steps=steps)
    assert recorder.ran().count("load") == 1
    outcomes = {o.name: o.status for o in run_pipeline(dag_config, steps=steps)}
    assert outcomes["load"] == RAN and recorder.ran() == ["load"]
    assert {o.status for o in run_pipeline(dag_config, steps=steps)} == {SKIPPED}


def test_what_a_step_writes_into_its_own_input_does_not_make_it_run_again(
        dag_config: Config, recorder: Recorder) -> None:
    steps = recorder.steps()
    recorder.writing_own_input["load"] = "2013-01-01.csv"  # as seed fills landing/
    run_pipeline(dag_config, steps=steps)
    recorder.ran()
    assert {o.status for o in run_pipeline(dag_config, steps=steps)} == {SKIPPED}


def test_config_change_and_force_rerun(dag_config: Config, recorder: Recorder,
                                       tmp_path: Path) -> None:
    steps = recorder.steps()
    run_pipeline(dag_config, steps=steps)
    recorder.ran()
    changed = dag_config_at(tmp_path, DAG, "seed=7")
    assert {o.status for o in run_pipeline(changed, steps=steps)} == {RAN}
    recorder.ran()
    run_pipeline(changed, steps=steps, only=["clean"], force=True)
    assert recorder.ran() == ["clean"]


def test_from_runs_the_step_and_its_dependants(dag_config: Config, recorder: Recorder) -> None:
    outcomes = run_pipeline(dag_config, steps=recorder.steps(), start="clean")
    assert [o.name for o in outcomes] == ["clean", "report"]


def test_failure_blocks_dependants_only(dag_config: Config, recorder: Recorder) -> None:
    recorder.failing.add("clean")
    outcomes = {o.name: o.status for o in run_pipeline(dag_config, steps=recorder.steps())}
    assert outcomes == {"load": RAN, "clean": FAILED, "report": BLOCKED, "audit": RAN}
    # The rerun skips what succeeded, retries the failed step and still blocks its dependant.
    table = format_outcomes(run_pipeline(dag_config, steps=recorder.steps()))
    statuses = {line.split()[0]: line.split()[1] for line in table.splitlines()[2:]}
    assert statuses == {"load": SKIPPED, "clean": FAILED, "report": BLOCKED, "audit": SKIPPED}


def test_steps_are_nested_under_one_parent_run(dag_config: Config, recorder: Recorder) -> None:
    run_pipeline(dag_config, steps=recorder.steps())
    target = resolve_target(dag_config)
    client = MlflowClient(target.tracking_uri)
    experiment = client.get_experiment_by_name(dag_config.experiment_name)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.info.run_name == "pipeline"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") ==
                parents[0].info.run_id]
    assert sorted(r.info.run_name for r in children) == ["audit", "clean", "load", "report"]
    assert all(r.data.metrics["rows"] == 3.0 for r in children)


def test_unknown_step_in_dag_names_the_key(tmp_path: Path, recorder: Recorder) -> None:
    config = dag_config_at(tmp_path, {"load": [], "train": ["load"]})
    with pytest.raises(ConfigError, match=r"pipeline\.steps\.train"):
        run_pipeline(config, steps=recorder.steps())


def test_a_pipeline_run_checks_the_tracking_server_once(tmp_path: Path, recorder: Recorder,
                                                        ) -> None:
    """`mlpipe run` checks the services once, before the lock (check_services); the
    pipeline's run and each step's then use the server without asking it again."""
    folder = tmp_path / "mlflow-server"
    folder.mkdir()
    with mlflow_server(folder) as upstream, counting_proxy(upstream) as (uri, counts):
        config = dag_config_at(tmp_path, DAG, f"mlflow.tracking_uri={uri}")
        try:
            check_services(config)
            outcomes = run_pipeline(config, steps=recorder.steps())
        finally:
            mlflow.set_tracking_uri(None)
    assert [o.status for o in outcomes] == [RAN] * 4
    assert counts["/health"] == 1, counts
    assert sum(counts.values()) > 1  # the runs themselves went through
