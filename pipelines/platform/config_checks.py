"""The checks across sections, run on a validated config before any Spark job.

A section validates itself (:mod:`pipelines.platform.config_schema`); whether the
sections fit each other (a model whose table nothing builds, a view reading an
undeclared source, a model ``params`` key its trainer refuses) can only be judged on
the whole. Each problem is ``(key, message)``, so the loader can name the file that
wrote the key.
"""

from __future__ import annotations

from pydantic import ValidationError

from pipelines.platform.config_schema import Config
from pipelines.platform.feature_declarations import SEQUENCE_LABEL
from pipelines.platform.model_declarations import SECTION_OF, catalogue_problems

Problem = tuple[tuple[str, ...], str]


def config_problems(config: Config) -> list[Problem]:
    """Every cross-section problem of ``config``, in the order they are reported."""
    return [*catalogue_problems(config.models), *declaration_problems(config),
            *params_problems(config), *ingest_problems(config)]


def ingest_problems(config: Config) -> list[Problem]:
    """``ingest.sources`` names only sources the dataset declares."""
    undeclared = [name for name in config.ingest.sources if name not in config.sources]
    if not undeclared:
        return []
    return [(("ingest", "sources"),
             f"{', '.join(map(repr, undeclared))} is not declared by dataset "
             f"{config.dataset!r}, which declares {', '.join(config.sources)}")]


def params_problems(config: Config) -> list[Problem]:
    """``(key, problem)`` for each model ``params`` key its trainer's section refuses."""
    problems = []
    for name, model in config.models.items():
        try:
            config.hyperparameters(name)
        except ValidationError as exc:
            for error in exc.errors():
                key = ("models", name, "params", *map(str, error["loc"]))
                what = ("not a key of " + SECTION_OF[model.trainer]
                        if error["type"] == "extra_forbidden" else error["msg"])
                problems.append((key, what))
    return problems


def declaration_problems(config: Config) -> list[Problem]:
    """``(key, problem)`` where the feature and model declarations do not fit each other:
    a view reading an undeclared source, a model whose table or label nothing builds."""
    features, sequences = config.features, config.sequences
    if features is None:
        if sequences is not None:
            return [(("sequences",), "the split dates are the features section's; declare "
                                     "features (features.yaml) too")]
        return [(("models", name, "table"), f"nothing builds {model.table!r}: the dataset "
                                            "declares no features (features.yaml)")
                for name, model in config.models.items()]
    problems = []
    views = {"features": features.view}
    if sequences is not None:
        views["sequences"] = sequences.view
    for section, view in views.items():
        unknown = [name for name in view.inputs if name not in config.sources]
        if unknown:
            problems.append(((section, "view", "inputs"),
                             f"{', '.join(unknown)} is not a declared source; dataset "
                             f"{config.dataset!r} declares {', '.join(config.sources)}"))
    tables = {features.table: ("linear", "logistic", "mlp")}
    if sequences is not None:
        tables[sequences.table] = ("sequence",)
    for name, model in config.models.items():
        if model.trainer not in tables.get(model.table, ()):
            built = [t for t, trainers in tables.items() if model.trainer in trainers]
            problems.append((("models", name, "table"),
                             f"{model.table!r} is not a table the {model.trainer} trainer can "
                             f"learn from; the features step builds "
                             f"{' and '.join(built) or 'none for it (declare sequences)'}"))
        elif model.table == features.table and model.label not in features.labels:
            problems.append((("models", name, "label"),
                             f"{model.label!r} is not a label of {features.table}; "
                             f"features.labels declares {', '.join(features.labels)}"))
        elif sequences is not None and model.table == sequences.table \
                and model.label != SEQUENCE_LABEL:
            problems.append((("models", name, "label"),
                             f"the sequence table's label is {SEQUENCE_LABEL!r}, the next "
                             f"period's {sequences.target}"))
    return problems
