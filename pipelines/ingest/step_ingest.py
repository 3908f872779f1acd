"""``mlpipe step ingest``: new landing files -> bronze tables, bad rows -> quarantine tables."""

from __future__ import annotations

import logging

import click

from pipelines.ingest.sources import get_source
from pipelines.ingest.stream import ingest_sources
from pipelines.platform.errors import DataError
from pipelines.platform.lake import pin, table_exists
from pipelines.platform.layout import Layout
from pipelines.platform.step import Step, StepContext, StepResult

log = logging.getLogger(__name__)


def run(ctx: StepContext, sources: tuple[str, ...] = ()) -> StepResult:
    chosen = [get_source(ctx.config, name)
              for name in (sources or ctx.config.ingested_sources)]
    for source in chosen:
        landing = ctx.layout.landing(source.name)
        if not ctx.layout.storage.is_dir(landing):
            raise DataError(f"no landing folder {landing}: run `mlpipe step seed` first")
    counts = ingest_sources(ctx.spark, ctx.layout, ctx.config.ingest, chosen, ctx.run_id)
    metrics: dict[str, float] = {}
    for c in counts:
        metrics |= {f"{c.source}.files": c.files, f"{c.source}.files_skipped": c.files_skipped,
                    f"{c.source}.rows_read": c.rows_read,
                    f"{c.source}.rows_ingested": c.rows_ingested,
                    f"{c.source}.rows_quarantined": c.rows_quarantined}
        metrics |= {f"{c.source}.quarantined.{reason.replace(':', '.').replace(' ', '_')}": n
                    for reason, n in c.quarantined.items()}
        if c.unaccounted is not None:
            metrics[f"{c.source}.files_unaccounted"] = len(c.unaccounted)
        if c.quarantined:
            log.info("%s quarantined by reason: %s", c.source, dict(c.quarantined))
    for total in ("rows_read", "rows_ingested", "rows_quarantined"):
        metrics[total] = sum(getattr(c, total) for c in counts)
    outputs = [pin(ctx.spark, f"{layer}.{source.name}", path)
               for source in chosen for layer in ("bronze", "quarantine")
               if table_exists(ctx.spark, path := ctx.layout.table(layer, source.name))]
    skipped = sum(c.files_skipped for c in counts)
    return StepResult(
        outputs=outputs, metrics=metrics,
        headline=f"{metrics['rows_read']:,.0f} rows read from "
                 f"{sum(c.files for c in counts)} new files: {metrics['rows_ingested']:,.0f} "
                 f"ingested, {metrics['rows_quarantined']:,.0f} quarantined"
                 + (f" ({skipped} files skipped: ingested before the checkpoint was lost)"
                    if skipped else ""))


INGEST = Step(
    name="ingest",
    run=run,
    help="Ingest landing files not seen before into bronze; bad rows go to quarantine.",
    config_sections=("ingest", "sources"),
    inputs=lambda config: [Layout.of(config).landing()],
    options=(
        click.option("--source", "sources", multiple=True, default=None,
                     help="Only this source (repeatable; default: ingest.sources, or every "
                          "declared source)."),
    ),
)
