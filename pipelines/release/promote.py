"""``mlpipe step promote``: the gate that moves ``@champion``, and only when it should.

A candidate becomes champion when its model has none yet, or when it beats the
champion on the configured metric by more than ``promote.margin``. Either way it
stops being ``@candidate``; the decision is written on the version and logged. A
candidate judged against a champion that has moved since is not decided on ("stale").
"""

from __future__ import annotations

import logging

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion

from models.metrics import is_better
from models.model_uri import alias_uri
from models.plots import comparison_plot
from pipelines.platform.registry import (
    CANDIDATE,
    CHAMPION,
    EVAL_CANDIDATE_TAG,
    EVAL_CHAMPION_TAG,
    EVAL_CHAMPION_VERSION_TAG,
    EVAL_METRIC_TAG,
    NO_CHAMPION,
    crown,
    deployment_of,
    dismiss,
    record_decision,
    version_by_alias,
)
from pipelines.platform.step import Step, StepContext, StepResult
from pipelines.release.evaluate import registry_inputs
from serving.provenance import DECISION_TAG, PROMOTED, check_tags

log = logging.getLogger(__name__)


def decide(tags: dict[str, str], margin: float) -> tuple[bool, str]:
    """(promote?, why) from the scores ``evaluate`` wrote on the candidate version."""
    metric = tags[EVAL_METRIC_TAG]
    candidate = float(tags[EVAL_CANDIDATE_TAG])
    if tags[EVAL_CHAMPION_TAG] == NO_CHAMPION:
        return True, f"no champion yet ({metric} {candidate:.5f})"
    champion = float(tags[EVAL_CHAMPION_TAG])
    better = is_better(metric, candidate, champion, margin)
    verb = "beats" if better else "does not beat"
    return better, (f"{metric} {candidate:.5f} {verb} the champion's {champion:.5f} "
                    f"by more than {margin:g}")


def stale_comparison(name: str, tags: dict[str, str]) -> str | None:
    """Why the scores on the candidate no longer decide anything, or None when they do.

    ``evaluate`` judged the candidate against the champion of its time; if ``@champion``
    moved since (another run, a person in the UI), crowning on that comparison could
    replace a better champion with a worse model. The alias is read again right before
    the move; MLflow has no conditional alias update, so this narrows the window to the
    two calls rather than closing it.
    """
    champion = version_by_alias(name, CHAMPION)
    now = str(champion.version) if champion is not None else NO_CHAMPION
    judged = tags.get(EVAL_CHAMPION_VERSION_TAG, NO_CHAMPION)
    if judged == now:
        return None
    return (f"judged against champion {judged}, but @{CHAMPION} is now {now}; "
            "the next evaluate judges it again")


def _crowned_already(name: str, candidate: ModelVersion) -> bool:
    champion = version_by_alias(name, CHAMPION)
    return (champion is not None and champion.version == candidate.version
            and candidate.tags.get(DECISION_TAG) == PROMOTED)


def log_decision_plot(name: str, version: str, tags: dict[str, str]) -> None:
    """Candidate against champion on the gate's metric, as the gate saw them."""
    values = {f"candidate v{version}": float(tags[EVAL_CANDIDATE_TAG])}
    if tags[EVAL_CHAMPION_TAG] != NO_CHAMPION:
        values[f"champion v{tags[EVAL_CHAMPION_VERSION_TAG]}"] = float(
            tags[EVAL_CHAMPION_TAG])
    mlflow.log_figure(comparison_plot(values, tags[EVAL_METRIC_TAG], f"{name}: promotion"),
                      f"{name}/promotion.png")


def run(ctx: StepContext) -> StepResult:
    rows = []
    moved: list[str] = []
    deployment = deployment_of(ctx.config)
    for name in ctx.config.models:
        candidate = version_by_alias(name, CANDIDATE)
        if candidate is None:
            continue
        # Another deployment's version behind our alias was put there by hand: refused.
        check_tags(candidate, deployment=deployment, promoted=False)
        if _crowned_already(name, candidate):
            # A promote cut short between its two alias calls: finish it. Judged again,
            # it would look stale (the champion moved: to itself) and lose its decision.
            dismiss(candidate)
            moved.append(alias_uri(name, CANDIDATE))
            log.info("%s v%s was already crowned; @%s removed", name, candidate.version,
                     CANDIDATE)
            continue
        if EVAL_METRIC_TAG not in candidate.tags:
            log.warning("%s v%s has not been evaluated; run `mlpipe step evaluate` first",
                        name, candidate.version)
            continue
        stale = stale_comparison(name, candidate.tags)
        if stale is not None:  # it stays @candidate, for the next evaluate
            log.warning("%s v%s not judged: %s", name, candidate.version, stale)
            record_decision(candidate, "stale", stale)
            rows.append({"model": name, "version": candidate.version, "decision": "stale",
                         "reason": stale})
            continue
        promoted, reason = decide(candidate.tags, ctx.config.promote.margin)
        decision = PROMOTED if promoted else "rejected"
        # Written before the alias moves: a server watching @champion reads the decision
        # as soon as it sees the new version.
        record_decision(candidate, decision, reason)
        (crown if promoted else dismiss)(candidate)
        moved += [alias_uri(name, CANDIDATE), *([alias_uri(name, CHAMPION)] if promoted else [])]
        log_decision_plot(name, candidate.version, candidate.tags)
        log.info("%s v%s %s: %s", name, candidate.version,
                 "promoted to @champion" if promoted else "not promoted", reason)
        rows.append({"model": name, "version": candidate.version,
                     "decision": decision, "reason": reason})
    if rows:
        mlflow.log_text(pd.DataFrame(rows).to_csv(index=False), "promotion.csv")
    promoted = [r["model"] for r in rows if r["decision"] == PROMOTED]
    return StepResult(
        changed=moved,
        metrics={"promoted": float(len(promoted)), "judged": float(len(rows))},
        headline=(f"promoted {', '.join(promoted) or 'none'} of {len(rows)} judged"
                  if rows else "no candidates"))


PROMOTE = Step(
    name="promote",
    run=run,
    help="Move @champion to each candidate that beats it by the configured margin.",
    config_sections=("promote", "evaluate", "models"),
    inputs=lambda config: [*registry_inputs(config, CANDIDATE),
                           *registry_inputs(config, CHAMPION)],
)
