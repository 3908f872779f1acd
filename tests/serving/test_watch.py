"""`--watch`: a new version behind the alias is swapped in under steady load, no request lost."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import httpx
import mlflow

from bench.loadgen import LoadResult, Target, run_open_loop
from tests.serving.conftest import start_server
from tests.serving.models import flight_records, log_linear_model


def test_alias_move_is_picked_up_without_a_failed_request(
        registry: Path, tmp_path_factory) -> None:
    name = "flight-delay-watch"
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, "champion", log_linear_model(name, intercept=5.0))
    # Version 2 predicts exactly 100 more for every row; registered now, promoted under load.
    version_2 = log_linear_model(name, intercept=105.0)
    server = start_server(f"models:/{name}@champion", tmp_path_factory.mktemp("watch"),
                          "--watch", "--watch-interval-s", "0.5")
    try:
        record = flight_records(1, seed=9).to_dict(orient="split", index=False)
        target = Target("127.0.0.1", server.port, "/invocations",
                        json.dumps({"dataframe_split": record}).encode(),
                        {"Content-Type": "application/json"})
        outcome: list[LoadResult] = []
        load = threading.Thread(target=lambda: outcome.append(asyncio.run(
            run_open_loop(target, rate=50, duration_s=8, keep_bodies=True))))
        load.start()
        time.sleep(2)
        client.set_registered_model_alias(name, "champion", version_2)
        load.join()
        (result,) = outcome
        assert set(result.codes) == {200}, result.codes
        predictions = [json.loads(body)["predictions"][0] for body in result.bodies]
        first, last = predictions[0], predictions[-1]
        assert abs(last - first - 100.0) < 1e-6
        assert {round(value - first, 6) for value in predictions} == {0.0, 100.0}
        metadata = httpx.get(f"{server.url}/v2/models/{name}").json()
        assert metadata["versions"] == ["2"]
    finally:
        server.stop()
