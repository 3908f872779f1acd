"""``mlpipe step seed``: land the embedded dataset's days as raw files (no Spark needed).

What lands is the dataset's ``seeding`` declaration (``conf/datasets/<dataset>/seeding.yaml``).
"""

from __future__ import annotations

import logging
from datetime import date

import click

from pipelines.ingest.seed import seed_landing, seed_plan
from pipelines.platform.layout import Layout
from pipelines.platform.step import Step, StepContext, StepResult

log = logging.getLogger(__name__)


def run(ctx: StepContext, start: date | None = None, end: date | None = None) -> StepResult:
    """Land the declared days; a dataset whose files arrive in ``landing/`` by other means
    (no ``seeding.yaml``) has nothing to seed, which is success, so the steps after run."""
    if ctx.config.seeding.loader is None:
        reason = (f"nothing to seed: dataset {ctx.config.dataset!r} has no embedded data "
                  f"(no conf/datasets/{ctx.config.dataset}/seeding.yaml); its files arrive "
                  f"in landing/")
        log.info("seed: %s", reason)
        return StepResult(metrics={"files_written": 0, "rows_written": 0, "days_written": 0},
                          headline=reason)
    plan = seed_plan(ctx.config)
    settings = ctx.config.seeding
    start, end = start or settings.start, end or settings.end
    report = seed_landing(ctx.layout.landing(), ctx.layout.storage, plan, start, end)
    return StepResult(
        changed=[ctx.layout.landing()] if report.files_written else [],
        metrics={"files_written": report.files_written, "rows_written": report.rows_written,
                 "days_written": report.days},
        headline=f"{report.days} new days {start}..{end} from {plan.name}: "
                 f"{report.files_written} files, {report.rows_written:,} rows")


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


SEED = Step(
    name="seed",
    run=run,
    help="Land the embedded dataset as raw files: one file per day of each daily source, "
         "one file per snapshot source.",
    config_sections=("seeding", "sources"),
    inputs=lambda config: [Layout.of(config).landing()],
    options=(
        click.option("--from", "start", default=None, callback=_date, metavar="YYYY-MM-DD",
                     help="First day to land (default: seeding.start)."),
        click.option("--to", "end", default=None, callback=_date, metavar="YYYY-MM-DD",
                     help="Last day to land, inclusive (default: seeding.end)."),
    ),
)
