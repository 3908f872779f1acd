"""Model quality on the December test split: the Horovod-trained models beside baselines.

``python -m bench.model_quality --data-root DATA --mlp-uri URI --sequence-uri URI`` reads the
newest silver tables and their specs (under a local or an ``s3a://`` data root, through the
project's layout and storage), fits the baselines on the training split and scores
everything on the same test rows. The MLP is compared with a logistic regression on the
spec's linear design and with gradient-boosted trees on the embedding inputs; the forecaster
with persistence (the last hour) and seasonal-naive (the same hour the day before).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from deltalake import DeltaTable
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mean_absolute_error, roc_auc_score

from models.features.encode_pandas import encode_pandas
from models.features.spec import FeatureSpec
from pipelines.platform.config import load_config
from pipelines.platform.layout import Layout

log = logging.getLogger("bench.model_quality")
OUT = Path(__file__).with_name("out") / "model_quality.json"
DELAY_FEATURE = "mean_dep_delay"


def read_split(layout: Layout, name: str) -> tuple[pd.DataFrame, int]:
    """The newest version of a silver table (delta-rs, so no Spark) and its version number."""
    uri, options = layout.storage.delta_options(layout.table("silver", name))
    table = DeltaTable(uri, storage_options=options)
    return table.to_pandas(), table.version()


def classifier_quality(layout: Layout, table: str, mlp_uri: str) -> dict[str, float]:
    flights, version = read_split(layout, table)
    spec = FeatureSpec.from_json(layout.storage.read_text(layout.feature_spec(table, version)))
    train, test = (flights[flights["split"] == s] for s in ("train", "test"))
    encoded = {name: encode_pandas(spec, part) for name, part in
               (("train", train), ("test", test))}
    y_train, y_test = train["is_delayed"].to_numpy(), test["is_delayed"].to_numpy()

    logistic = LogisticRegression(max_iter=1000).fit(encoded["train"]["features"], y_train)
    trees_inputs = {k: np.hstack([v["cat_indices"], v["numeric"]]) for k, v in encoded.items()}
    # Tail buckets (513) exceed the trees' 255 categorical bins: they stay ordinal codes.
    categorical = [c < len(spec.categorical) for c in range(trees_inputs["train"].shape[1])]
    trees = HistGradientBoostingClassifier(categorical_features=categorical, max_iter=500,
                                           learning_rate=0.1, random_state=0)
    trees.fit(trees_inputs["train"], y_train)
    mlp = mlflow.pyfunc.load_model(mlp_uri)
    return {
        "rows_test": len(test), "table_version": version,
        "auc_mlp": roc_auc_score(y_test, mlp.predict(test[list(spec.request)])),
        "auc_logistic": roc_auc_score(y_test, logistic.predict_proba(
            encoded["test"]["features"])[:, 1]),
        "auc_trees": roc_auc_score(y_test, trees.predict_proba(trees_inputs["test"])[:, 1]),
        "trees_iterations": int(trees.n_iter_)}


def forecaster_quality(layout: Layout, table: str, sequence_uri: str) -> dict[str, float]:
    windows, version = read_split(layout, table)
    stats = json.loads(layout.storage.read_text(layout.feature_spec(table, version)))
    column = stats["features"].index(DELAY_FEATURE)
    test = windows[windows["split"] == "test"]
    steps = np.stack([np.stack(list(w)) for w in test["window"]])[:, :, column]
    delay = steps * stats["std"][column] + stats["mean"][column]  # back to minutes
    target = test["target"].to_numpy()
    model = mlflow.pyfunc.load_model(sequence_uri)
    return {"rows_test": len(test), "table_version": version,
            "mae_model": mean_absolute_error(target, model.predict(test[["window"]])),
            "mae_persistence": mean_absolute_error(target, delay[:, -1]),
            # The window ends at hour t; the target is t + 1, so t + 1 - 24 is its first hour.
            "mae_seasonal_naive": mean_absolute_error(target, delay[:, 0])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True,
                        help="the pipeline's data root: a local folder or an s3a:// URI")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI of the runs")
    parser.add_argument("--mlp-uri", required=True)
    parser.add_argument("--sequence-uri", required=True)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.tracking_uri:
        mlflow.set_tracking_uri(args.tracking_uri)
    # The object-store settings (for an s3a:// root) come from conf/, like the pipeline's.
    config = load_config(overrides=[f"data_root={args.data_root}"])
    layout = Layout.of(config)
    results = {"classifier": classifier_quality(layout, config.features.table, args.mlp_uri),
               "forecaster": forecaster_quality(layout, config.sequences.table,
                                                args.sequence_uri)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    log.info("%s", json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
