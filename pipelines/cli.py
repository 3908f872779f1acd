"""The ``mlpipe`` command line.

Exit codes: 0 success, 2 a usage or configuration error, 1 a job that failed.
Every command takes ``--config DIR``, ``--env NAME`` and ``--set KEY=VALUE``
(before or after the command name); their defaults live in ``conf/``, never here.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from pipelines.orchestration.catalogue import STEPS
from pipelines.platform.config import Config, config_as_yaml, load_config
from pipelines.platform.errors import ConfigError, MlpipeError
from pipelines.platform.out_of_space import is_out_of_space
from pipelines.platform.step import Step

log = logging.getLogger("mlpipe")


def _remember(name: str, multiple: bool = False) -> Callable[[click.Context, Any, Any], Any]:
    """Store a global option on the root context, whichever level it was given at."""

    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        store = ctx.find_root().meta.setdefault("mlpipe", {"overrides": []})
        if multiple:
            store["overrides"].extend(value)
        elif value is not None:
            store[name] = value
        return value

    return callback


def config_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Attach --config/--env/--set to a command (they may appear at any level)."""
    func = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                        expose_value=False, callback=_remember("overrides", multiple=True),
                        help="Override one config key, e.g. --set spark.master=local[2].")(func)
    func = click.option("--env", expose_value=False, callback=_remember("env"),
                        help="Environment overlay conf/<ENV>.yaml (default: $MLPIPE_ENV).")(func)
    func = click.option("--config", "conf_dir", expose_value=False,
                        callback=_remember("conf_dir"), type=click.Path(file_okay=False),
                        help="Configuration folder (default: ./conf or $MLPIPE_CONF_DIR).")(func)
    return func


def current_config() -> Config:
    """Load the config from the global options collected on the root context."""
    store = click.get_current_context().find_root().meta.get("mlpipe", {"overrides": []})
    return load_config(env=store.get("env"), overrides=store["overrides"],
                       conf_dir=store.get("conf_dir"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@config_options
def cli(verbose: bool) -> None:
    """mlpipe: raw files to a served model on Spark, Delta Lake and MLflow."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "urllib3", "alembic", "mlflow.store"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@cli.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("show")
@config_options
def config_show() -> None:
    """Print the merged, validated configuration."""
    click.echo(config_as_yaml(current_config()), nl=False)


@cli.command()
@click.argument("model_uri")
@click.option("--watch", is_flag=True,
              help="Poll the alias in MODEL_URI and swap in new versions without downtime.")
@click.option("--replicas", type=click.IntRange(min=1), default=None,
              help="Server processes behind a generated HAProxy (serving.replicas).")
@click.option("--insecure", is_flag=True, default=None,
              help="Serve without a token on a host other than loopback (serving.insecure).")
@config_options
def serve(model_uri: str, watch: bool, replicas: int | None, insecure: bool | None) -> int:
    """Serve MODEL_URI (models:/NAME@ALIAS, runs:/ID/model) over HTTP with dynamic batching.

    Settings come from the serving section (conf/serving.yaml), e.g.
    --set serving.port=8081 --set serving.max_batch_size=128; `--replicas N` is
    shorthand for --set serving.replicas=N. The token comes from MLPIPE_SERVING_TOKEN or
    serving.auth_token_file; a host other than loopback refuses to start without one
    unless --insecure.
    """
    from pipelines.platform.tracking import configure_tracking
    from serving.server import serve as serve_model

    config = current_config()
    configure_tracking(config)
    given = {key: value for key, value in (("replicas", replicas), ("insecure", insecure))
             if value is not None}
    settings = type(config.serving).model_validate({**config.serving.model_dump(), **given})
    serve_model(model_uri, settings, watch=watch)
    return 0


@cli.group()
def services() -> None:
    """Local stand-ins for a team's shared services (conf/team.yaml), for a trial."""


@services.command()
@config_options
def up() -> int:
    """Start the object store, PostgreSQL, the MLflow server and a Spark cluster; Ctrl-C stops.

    They listen where the config points the pipeline (object_store.endpoint,
    mlflow.tracking_uri, spark.master): use it with --env team.
    """
    from pipelines.services.up import services_up

    return services_up(current_config())


@cli.command()
@config_options
def ui() -> int:
    """Start the MLflow UI on the configured host and port, against the same backend."""
    from pipelines.ui import start_ui

    return start_ui(current_config())


@cli.command()
@click.option("--from", "start", metavar="STEP", help="Start at STEP and run what depends on it.")
@click.option("--only", multiple=True, metavar="STEP", help="Run only STEP (repeatable).")
@click.option("--force", is_flag=True, help="Rerun steps even when their inputs are unchanged.")
@config_options
def run(start: str | None, only: tuple[str, ...], force: bool) -> int:
    """Run the whole pipeline (the DAG in conf/pipeline.yaml); exit 1 if a step failed."""
    from pipelines.orchestration.runner import FAILED, format_outcomes, run_pipeline
    from pipelines.orchestration.scheduler import run_locked
    from pipelines.platform.preflight import check_services

    config = current_config()
    check_services(config)  # before the lock, which lives on the same store
    outcomes = run_locked(config, lambda: run_pipeline(config, start=start, only=only,
                                                       force=force))
    click.echo(format_outcomes(outcomes))
    return 1 if any(o.status == FAILED for o in outcomes) else 0


@cli.command()
@click.option("--cron", help="Cron expression (default: schedule.cron).")
@click.option("--max-runs", type=int, help="Stop after this many scheduled runs.")
@config_options
def schedule(cron: str | None, max_runs: int | None) -> int:
    """Run the pipeline on a cron schedule until interrupted."""
    from pipelines.orchestration.runner import format_outcomes, run_pipeline
    from pipelines.orchestration.scheduler import run_schedule
    from pipelines.platform.preflight import check_services

    config = current_config()

    def scheduled_run() -> None:
        check_services(config)  # once a run: a service may have gone since the last
        click.echo(format_outcomes(run_pipeline(config)))

    try:
        run_schedule(config, scheduled_run, cron=cron, max_runs=max_runs)
    except KeyboardInterrupt:
        log.info("schedule stopped")
    return 0


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("step_name", metavar="STEP")
@click.argument("step_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--dry-run", is_flag=True, help="Print the spark-submit command only.")
@config_options
def submit(step_name: str, step_args: tuple[str, ...], dry_run: bool) -> int:
    """Run STEP's job with spark-submit against spark.master, shipping the code as a zip."""
    from pipelines.orchestration.submit import submit as submit_job
    from pipelines.platform.config import resolve_conf_dir

    store = click.get_current_context().find_root().meta.get("mlpipe", {"overrides": []})
    conf_dir = resolve_conf_dir(store.get("conf_dir")).resolve()
    return submit_job(current_config(), step_name, conf_dir=conf_dir,
                      overrides=store["overrides"], step_args=step_args, dry_run=dry_run)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("names", nargs=-1, type=click.UNPROCESSED)
def bench(names: tuple[str, ...]) -> int:
    """Run the benchmarks in bench/ (all, or the NAMES given); results in bench/RESULTS.md."""
    import subprocess

    from models.project import PROJECT_ROOT

    return subprocess.call([sys.executable, "-m", "bench", *names], cwd=PROJECT_ROOT)


def step_command(step: Step) -> click.Command:
    """A ``mlpipe step NAME`` command that runs ``step`` with its own options."""

    def invoke(**options: Any) -> int:
        from pipelines.orchestration.scheduler import run_locked
        from pipelines.orchestration.step_runner import run_step
        from pipelines.platform.preflight import check_services

        config = current_config()
        # Before the lock, which lives on the same store.
        check_services(config, tracking=step.tracked)
        # One writer per root: a step, however launched (here, spark-submit, a
        # scheduler), never runs beside a pipeline run or another step.
        result = run_locked(config, lambda: run_step(step, config, **options))
        if result.headline:
            click.echo(f"{step.name}: {result.headline}")
        return 0

    command = click.command(name=step.name, help=step.help)(config_options(invoke))
    for option in step.options:
        command = option(command)
    return command


if STEPS:
    @cli.group()
    def step() -> None:
        """Run one pipeline step."""

    for _step in STEPS:
        step.add_command(step_command(_step))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of the jobs; returns the exit code."""
    try:
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="mlpipe",
                        standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    except ConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        return 2
    except MlpipeError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except Exception as exc:  # a job failure: full traceback in the log, exit code 1
        log.exception("failed")
        if is_out_of_space(exc):  # outside a step (the lock, the state): name it too
            click.echo(f"error: no space left on the device: {exc}", err=True)
        return 1
    return code if isinstance(code, int) else 0


def run_job(step: str, argv: Sequence[str] | None = None) -> int:
    """What a spark-submit entry point in ``jobs/`` does: ``mlpipe step STEP [ARGS]``."""
    return main(["step", step, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
