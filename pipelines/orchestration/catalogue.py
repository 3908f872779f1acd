"""The pipeline's steps, in DAG order; each becomes ``mlpipe step NAME`` and a job in jobs/."""

from __future__ import annotations

from pipelines.features.step import FEATURES
from pipelines.ingest.step_ingest import INGEST
from pipelines.ingest.step_seed import SEED
from pipelines.ingest.step_synthesize import SYNTHESIZE
from pipelines.platform.step import Step
from pipelines.release.batch_score import BATCH_SCORE
from pipelines.release.evaluate import EVALUATE
from pipelines.release.promote import PROMOTE
from pipelines.training.deep import TRAIN_DEEP
from pipelines.training.regression import TRAIN_REGRESSION
from pipelines.training.sequence import TRAIN_SEQUENCE

STEPS: tuple[Step, ...] = (SEED, INGEST, FEATURES, TRAIN_REGRESSION, TRAIN_DEEP, TRAIN_SEQUENCE,
                           EVALUATE, PROMOTE, BATCH_SCORE, SYNTHESIZE)

