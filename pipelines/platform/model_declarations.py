"""A dataset's model catalogue, as declared in ``conf/datasets/<dataset>/models.yaml``.

Each entry is a registered model: which trainer fits it, on which silver table and label,
and the metric its promotion gate compares. The training steps train the entries of
their trainer, and evaluate, promote and batch_score go through every entry, so no model
is named in code. A model's hyperparameters are its trainer's section of
``conf/pipeline.yaml`` (``train_regression``, ``train_deep``, ``train_sequence``) with the
keys of its own ``params`` replacing the section's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from models.metrics import CATALOGUE, GREATER_IS_BETTER, Family
from pipelines.platform.section import DeclarationError, Section

Trainer = Literal["linear", "logistic", "mlp", "sequence"]
# Any metric of the catalogue; which ones fit a model depends on its trainer (below).
Metric = Literal[tuple(GREATER_IS_BETTER)]

# The config section that holds each trainer's hyperparameters.
SECTION_OF: dict[str, str] = {"linear": "train_regression", "logistic": "train_regression",
                              "mlp": "train_deep", "sequence": "train_sequence"}
# What each trainer predicts, and so which family of metrics can judge it: the logistic
# regression and the MLP give the probability of a binary label, the others a number.
FAMILY_OF: dict[str, Family] = {"linear": "regression", "sequence": "regression",
                                "logistic": "classification", "mlp": "classification"}


class ModelDeclaration(Section):
    """One registered model of the catalogue (its key is the registered name)."""

    trainer: Trainer
    table: str
    label: str
    metric: Metric
    # Keys of the trainer's section (train_deep.epochs: `params: {epochs: 5}`) for this model.
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _metric_fits_the_trainer(self) -> ModelDeclaration:
        fitting = CATALOGUE[FAMILY_OF[self.trainer]]
        if self.metric not in fitting:
            raise DeclarationError(("metric",), f"{self.metric!r} cannot judge what the "
                                   f"{self.trainer} trainer predicts; use one of "
                                   f"{', '.join(fitting)}")
        return self


def catalogue_problems(models: dict[str, ModelDeclaration]
                       ) -> list[tuple[tuple[str, ...], str]]:
    """``(key, problem)`` for what the steps cannot train yet, in catalogue order.

    Metrics are logged under the trainer's name (``linear.test.rmse``), so a trainer
    takes one model; the two regressions share one encoding of one table.
    """
    problems, first_of = [], {}
    for name, model in models.items():
        if model.trainer in first_of:
            problems.append((("models", name, "trainer"),
                             f"a second {model.trainer} model after "
                             f"{first_of[model.trainer]!r}; declare one per trainer"))
        first_of.setdefault(model.trainer, name)
    regressions = [(name, m.table) for name, m in models.items()
                   if m.trainer in ("linear", "logistic")]
    if len({table for _, table in regressions}) > 1:
        name, _ = regressions[-1]
        problems.append((("models", name, "table"),
                         "the linear and logistic models must share a table, got "
                         f"{' and '.join(table for _, table in regressions)}"))
    return problems
