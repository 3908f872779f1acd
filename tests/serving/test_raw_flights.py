"""The project's own regression pyfunc, served: raw records with a datetime and gaps.

One set of rows is scored four ways (offline pyfunc, Spark batch scoring, the MLflow
scoring protocol, KServe v2) and all must agree, so a model scores the same wherever
it runs. Dates travel as ISO-8601 text; nulls are missing values the model imputes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from mlflow.pyfunc.scoring_server.client import ScoringServerClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.serving import models
from tests.serving.conftest import ServerProcess, start_server, wait_until_ready
from tests.support.flights import RAW_FIELDS

TOLERANCE = dict(rtol=1e-6, atol=1e-6)
NAME = "flight-delay-raw"
OPTIONAL = ("tailnum", "wind_gust", "precip")  # missing in the logged input example


@pytest.fixture(scope="module")
def raw_uri(registry) -> str:
    return f"models:/{NAME}/{models.log_raw_flight_model(NAME)}"


@pytest.fixture(scope="module")
def started_server(raw_uri: str, tmp_path_factory: pytest.TempPathFactory,
                   ) -> Iterator[ServerProcess]:
    """Started, not yet ready: the Spark test asks for it so both warm up at once."""
    server = start_server(raw_uri, tmp_path_factory.mktemp("raw-server"), "--max-delay-ms", "5",
                          wait_ready=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def raw_server(started_server: ServerProcess) -> ServerProcess:
    wait_until_ready(started_server)
    return started_server


@pytest.fixture(scope="module")
def offline(raw_uri: str) -> mlflow.pyfunc.PyFuncModel:
    return mlflow.pyfunc.load_model(raw_uri)


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    """Rows with a carrier outside the vocabulary, null weather and null tail numbers."""
    return models.raw_flight_records(40, seed=11, carriers=("AA", "DL", "ZZ-new"))


def iso_dates(values: pd.Series) -> np.ndarray:
    return values.map(pd.Timestamp.isoformat).to_numpy(dtype=object)


def triton_inputs(records: pd.DataFrame, binary: bool) -> list[triton.InferInput]:
    """One tensor per field: strings and dates as BYTES, numbers as FP64."""
    inputs = []
    for name in records.columns:
        column = records[name]
        if name == "sched_dep_local":
            values, datatype = iso_dates(column), "BYTES"
        else:
            values = column.to_numpy()
            datatype = "BYTES" if values.dtype == object else "FP64"
        tensor = triton.InferInput(name, [len(values)], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


def test_offline_predict_equals_spark_batch_scoring(
        started_server: ServerProcess, spark: SparkSession, raw_uri: str,
        records: pd.DataFrame, offline: mlflow.pyfunc.PyFuncModel) -> None:
    predict = mlflow.pyfunc.spark_udf(spark, raw_uri, result_type="double",
                                      env_manager="local")
    frame = spark.createDataFrame(records.assign(row=np.arange(len(records))))
    scored = (frame.select("row", predict(F.struct(*RAW_FIELDS)).alias("prediction"))
              .toPandas().sort_values("row"))
    np.testing.assert_allclose(scored["prediction"], offline.predict(records), **TOLERANCE)


def test_metadata_declares_dates_as_bytes_and_optional_inputs(raw_server: ServerProcess,
                                                              ) -> None:
    client = triton.InferenceServerClient(raw_server.url.removeprefix("http://"))
    inputs = {tensor["name"]: tensor for tensor in client.get_model_metadata(NAME)["inputs"]}
    assert list(inputs) == list(RAW_FIELDS)
    date = inputs["sched_dep_local"]
    assert date["datatype"] == "BYTES"
    assert "ISO-8601" in date["parameters"]["content"]
    assert [name for name, tensor in inputs.items()
            if tensor.get("parameters", {}).get("optional")] == list(OPTIONAL)
    document = httpx.get(f"{raw_server.url}/openapi.json").json()
    record = (document["paths"]["/invocations"]["post"]["requestBody"]["content"]
              ["application/json"]["schema"]["properties"]["dataframe_records"]["items"])
    assert "ISO-8601" in record["properties"]["sched_dep_local"]["description"]
    assert record["properties"]["wind_gust"]["nullable"]
    assert set(record["required"]) == set(RAW_FIELDS) - set(OPTIONAL)


@pytest.mark.parametrize("orient", ["split", "records"])
def test_invocations_with_iso_dates_and_nulls_equal_offline(
        raw_server: ServerProcess, records: pd.DataFrame,
        offline: mlflow.pyfunc.PyFuncModel, orient: str) -> None:
    """As pandas writes them: ISO dates, NaN and None as null."""
    payload = json.loads(records.to_json(orient=orient, date_format="iso", index=False))
    response = httpx.post(f"{raw_server.url}/invocations",
                          json={f"dataframe_{orient}": payload})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["predictions"], offline.predict(records),
                               **TOLERANCE)


def test_mlflow_scoring_client_sends_dates_and_nans(raw_server: ServerProcess,
                                                    records: pd.DataFrame,
                                                    offline: mlflow.pyfunc.PyFuncModel) -> None:
    scoring = ScoringServerClient("127.0.0.1", raw_server.port)
    predictions = scoring.invoke(records).get_predictions()
    np.testing.assert_allclose(np.asarray(predictions).reshape(-1), offline.predict(records),
                               **TOLERANCE)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_kserve_infer_with_iso_dates_equals_offline(
        raw_server: ServerProcess, records: pd.DataFrame,
        offline: mlflow.pyfunc.PyFuncModel, binary: bool) -> None:
    """The optional tail number left out: the server fills it as missing."""
    client = triton.InferenceServerClient(raw_server.url.removeprefix("http://"))
    result = client.infer(NAME, triton_inputs(records.drop(columns="tailnum"), binary),
                          outputs=[triton.InferRequestedOutput("predictions", binary_data=binary)])
    np.testing.assert_allclose(result.as_numpy("predictions"),
                               offline.predict(records.assign(tailnum=None)), **TOLERANCE)


def test_unknown_carrier_scores_as_out_of_vocabulary(
        raw_server: ServerProcess, records: pd.DataFrame,
        offline: mlflow.pyfunc.PyFuncModel) -> None:
    unknown = records[records["carrier"] == "ZZ-new"]
    assert len(unknown)
    payload = json.loads(unknown.to_json(orient="split", date_format="iso", index=False))
    served = httpx.post(f"{raw_server.url}/invocations",
                        json={"dataframe_split": payload}).json()["predictions"]
    np.testing.assert_allclose(served, offline.predict(unknown.assign(carrier="XX")),
                               **TOLERANCE)


def test_bad_date_or_missing_required_field_is_400_naming_it(raw_server: ServerProcess,
                                                             records: pd.DataFrame) -> None:
    row = json.loads(records.head(1).to_json(orient="records", date_format="iso"))[0]
    for change, field in [({"sched_dep_local": "5 January"}, "sched_dep_local"),
                          ({"sched_dep_local": "2013-01-05T05:15:00+01:00"}, "sched_dep_local"),
                          ({"distance": None, "temp": "warm"}, "temp")]:
        response = httpx.post(f"{raw_server.url}/invocations",
                              json={"dataframe_records": [{**row, **change}]})
        assert response.status_code == 400, response.text
        assert field in response.json()["message"]
    del row["carrier"]
    response = httpx.post(f"{raw_server.url}/invocations", json={"dataframe_records": [row]})
    assert response.status_code == 400
    assert "'carrier'" in response.json()["message"]
    inputs = [{"name": "sched_dep_local", "datatype": "BYTES", "shape": [1],
               "data": ["2013-13-45T99:00:00"]}]
    response = httpx.post(f"{raw_server.url}/v2/models/{NAME}/infer", json={"inputs": inputs})
    assert response.status_code == 400
    assert "sched_dep_local" in response.json()["error"]
