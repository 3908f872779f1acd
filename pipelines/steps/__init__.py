"""The pipeline's steps, in DAG order; each becomes ``mlpipe step NAME`` and a job in jobs/."""

from __future__ import annotations

from pipelines.steps.base import Step
from pipelines.steps.batch_score import BATCH_SCORE
from pipelines.steps.evaluate import EVALUATE
from pipelines.steps.features import FEATURES
from pipelines.steps.ingest import INGEST
from pipelines.steps.promote import PROMOTE
from pipelines.steps.seed import SEED
from pipelines.steps.synthesize import SYNTHESIZE
from pipelines.steps.train_deep import TRAIN_DEEP
from pipelines.steps.train_regression import TRAIN_REGRESSION
from pipelines.steps.train_sequence import TRAIN_SEQUENCE

STEPS: tuple[Step, ...] = (SEED, INGEST, FEATURES, TRAIN_REGRESSION, TRAIN_DEEP, TRAIN_SEQUENCE,
                           EVALUATE, PROMOTE, BATCH_SCORE, SYNTHESIZE)

