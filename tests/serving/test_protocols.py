"""Both protocols with real clients, against the real server: equal to offline predict."""

from __future__ import annotations

import asyncio
import re

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

from tests.serving.conftest import (
    GRACEFUL_EXIT,
    LINEAR_SERVER_MAX_ROWS,
    ServerProcess,
    start_server,
)
from tests.serving.models import INTEGER_FIELDS, flight_records

TOLERANCE = dict(rtol=1e-6, atol=1e-6)
PRIORITY = "x-request-priority"
TIMEOUT = "x-request-timeout-ms"


def triton_inputs(records: pd.DataFrame, binary: bool) -> list[triton.InferInput]:
    """One named tensor per raw field; strings as BYTES, shape [n]."""
    inputs = []
    for name in records.columns:
        values = records[name].to_numpy()
        if values.dtype == object:
            datatype = "BYTES"
        else:
            datatype = "INT64" if name in INTEGER_FIELDS else "FP64"
        tensor = triton.InferInput(name, [len(values)], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


@pytest.fixture(scope="module")
def linear_offline(linear_uri: str) -> mlflow.pyfunc.PyFuncModel:
    return mlflow.pyfunc.load_model(linear_uri)


@pytest.fixture(scope="module")
def client(linear_server: ServerProcess) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(linear_server.url.removeprefix("http://"))


def test_health_and_metadata_with_tritonclient(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("flight-delay-linear")
    metadata = client.get_model_metadata("flight-delay-linear")
    inputs = {tensor["name"]: tensor["datatype"] for tensor in metadata["inputs"]}
    assert inputs["carrier"] == "BYTES"
    assert inputs["month"] == "INT64"
    assert inputs["distance"] == "FP64"
    assert metadata["versions"] == ["1"]
    assert [output["name"] for output in metadata["outputs"]] == ["predictions"]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_kserve_infer_equals_offline_predict(client: triton.InferenceServerClient,
                                             linear_offline: mlflow.pyfunc.PyFuncModel,
                                             binary: bool) -> None:
    # A carrier the model never saw must land in the out-of-vocabulary bucket.
    records = flight_records(300, seed=1, carriers=("AA", "DL", "ZZ-new"))
    result = client.infer("flight-delay-linear", triton_inputs(records, binary),
                          outputs=[triton.InferRequestedOutput("predictions", binary_data=binary)])
    served = result.as_numpy("predictions")
    expected = linear_offline.predict(records)
    assert served.shape == (300,)
    np.testing.assert_allclose(served, expected, **TOLERANCE)
    unknown = records["carrier"].to_numpy() == "ZZ-new"
    assert unknown.any()
    np.testing.assert_allclose(
        served[unknown], linear_offline.predict(records.assign(carrier="XX"))[unknown],
        **TOLERANCE)


def test_binary_output_without_requested_outputs(client: triton.InferenceServerClient,
                                                 linear_offline: mlflow.pyfunc.PyFuncModel,
                                                 ) -> None:
    """No `outputs` in the request: tritonclient asks for binary_data_output."""
    records = flight_records(7, seed=2)
    result = client.infer("flight-delay-linear", triton_inputs(records, binary=True),
                          priority=2)  # Triton's schedule-policy level 2: low
    np.testing.assert_allclose(result.as_numpy("predictions"), linear_offline.predict(records),
                               **TOLERANCE)


@pytest.mark.parametrize("layout", ["dataframe_split", "dataframe_records", "instances",
                                    "inputs"])
def test_mlflow_invocations_equal_offline_predict(linear_server: ServerProcess,
                                                  linear_offline: mlflow.pyfunc.PyFuncModel,
                                                  layout: str) -> None:
    records = flight_records(20, seed=3)
    rows = records.to_dict(orient="records")
    payload = {
        "dataframe_split": records.to_dict(orient="split", index=False),
        "dataframe_records": rows,
        "instances": rows,
        "inputs": records.to_dict(orient="list"),
    }[layout]
    response = httpx.post(f"{linear_server.url}/invocations", json={layout: payload})
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(response.json()["predictions"], linear_offline.predict(records),
                               **TOLERANCE)


def test_mlflow_scoring_client_works_unchanged(linear_server: ServerProcess,
                                               linear_offline: mlflow.pyfunc.PyFuncModel) -> None:
    records = flight_records(10, seed=4)
    scoring = ScoringServerClient("127.0.0.1", linear_server.port)
    scoring.ping()
    predictions = scoring.invoke(records).get_predictions()
    np.testing.assert_allclose(np.asarray(predictions).reshape(-1),
                               linear_offline.predict(records), **TOLERANCE)


def test_concurrent_requests_are_batched_and_each_gets_its_rows(
        linear_server: ServerProcess, linear_offline: mlflow.pyfunc.PyFuncModel) -> None:
    """64 single-row requests at once: fewer model calls than requests, no rows mixed up."""
    records = flight_records(64, seed=5)
    expected = linear_offline.predict(records)
    before = _batch_stats(linear_server)

    async def send_all() -> list[float]:
        async with httpx.AsyncClient(base_url=linear_server.url,
                                     limits=httpx.Limits(max_connections=64)) as http:
            responses = await asyncio.gather(*(
                http.post("/invocations", json={"dataframe_records": [row]})
                for row in records.to_dict(orient="records")))
        assert all(response.status_code == 200 for response in responses)
        return [response.json()["predictions"][0] for response in responses]

    served = asyncio.run(send_all())
    np.testing.assert_allclose(served, expected, **TOLERANCE)
    calls, rows = (after - start for after, start in zip(_batch_stats(linear_server), before,
                                                         strict=True))
    assert rows == 64
    assert calls < 64


def _batch_stats(server: ServerProcess) -> tuple[float, float]:
    text = httpx.get(f"{server.url}/metrics").text
    count = re.search(r"^mlpipe_serving_batch_rows_count (\S+)$", text, re.M)
    total = re.search(r"^mlpipe_serving_batch_rows_sum (\S+)$", text, re.M)
    return float(count[1]), float(total[1])


@pytest.mark.parametrize(("body", "field"), [
    (b"{not json", "invalid JSON"),
    (b'{"dataframe_records": [{"carrier": "AA"}]}', "'origin'"),
    (b'{"dataframe_split": {"columns": ["carrier"], "data": [["AA", 1]]}}', "data[0]"),
    (b'{"instances": [{"carrier": "AA", "origin": "JFK", "month": 1, "hour": 5,'
     b' "sched_dep_time": 515, "distance": "far", "temp": 50.0}]}', "'distance'"),
    (b'{"instances": [{"carrier": "AA", "origin": "JFK", "month": 1.5, "hour": 5,'
     b' "sched_dep_time": 515, "distance": 100.0, "temp": 50.0}]}', "'month'"),
    (b'{"instances": [{"carrier": 7, "origin": "JFK", "month": 1, "hour": 5,'
     b' "sched_dep_time": 515, "distance": 100.0, "temp": 50.0}]}', "'carrier'"),
    (b'{"records": []}', "exactly one of"),
    pytest.param(b"[" * 5000 + b"]" * 5000, "nested too deeply", id="nested-5000-deep"),
])
def test_bad_mlflow_input_is_400_naming_the_field(linear_server: ServerProcess, body: bytes,
                                                  field: str) -> None:
    response = httpx.post(f"{linear_server.url}/invocations", content=body,
                          headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert field in response.json()["message"]


def kserve_json_inputs(records: pd.DataFrame) -> list[dict]:
    """One JSON tensor per raw field, shape [n]."""
    return [{"name": name, "shape": [len(records)],
             "datatype": "BYTES" if records[name].dtype == object else
             ("INT64" if name in INTEGER_FIELDS else "FP64"),
             "data": records[name].tolist()}
            for name in records.columns]


@pytest.mark.parametrize(("change", "parameters", "field"), [
    ({"name": "carier"}, {}, "'carier'"),
    ({"datatype": "FP32"}, {}, "'carrier'"),
    ({"shape": [2]}, {}, "'carrier'"),
    ({"shape": [1, 3]}, {}, "'carrier'"),
    ({"shape": [0, 2**63], "data": []}, {}, "'carrier': shape [0, 9223372036854775808] is over"),
    ({"shape": [1] * 65}, {}, "'carrier': shape has 65 dimensions"),
    ({}, {"timeout": 10**400}, "parameters.timeout"),
])
def test_bad_kserve_input_is_400_naming_the_field(linear_server: ServerProcess, change: dict,
                                                  parameters: dict, field: str) -> None:
    inputs = kserve_json_inputs(flight_records(1, seed=6))
    inputs[0] = {**inputs[0], **change}
    response = httpx.post(f"{linear_server.url}/v2/models/flight-delay-linear/infer",
                          json={"inputs": inputs, "parameters": parameters})
    assert response.status_code == 400
    assert field in response.json()["error"]


def test_more_rows_than_the_limit_is_413_naming_it(linear_server: ServerProcess) -> None:
    records = flight_records(LINEAR_SERVER_MAX_ROWS + 1, seed=8)
    kserve_reply = httpx.post(f"{linear_server.url}/v2/models/flight-delay-linear/infer",
                              json={"inputs": kserve_json_inputs(records)})
    mlflow_reply = httpx.post(f"{linear_server.url}/invocations",
                              json={"dataframe_split": records.to_dict(orient="split")})
    limit = f"{LINEAR_SERVER_MAX_ROWS + 1} rows, over the limit of {LINEAR_SERVER_MAX_ROWS}"
    assert kserve_reply.status_code == 413 and limit in kserve_reply.json()["error"]
    assert mlflow_reply.status_code == 413 and limit in mlflow_reply.json()["message"]
    at_the_limit = httpx.post(f"{linear_server.url}/invocations", json={
        "dataframe_split": records.iloc[:-1].to_dict(orient="split")})
    assert at_the_limit.status_code == 200


def test_unknown_model_is_404_and_large_body_is_413(linear_server: ServerProcess) -> None:
    response = httpx.post(f"{linear_server.url}/v2/models/nope/infer", json={"inputs": []})
    assert response.status_code == 404
    assert "'nope'" in response.json()["error"]
    records = flight_records(3000, seed=7)  # well over the 200 kB limit of this server
    response = httpx.post(f"{linear_server.url}/invocations",
                          json={"dataframe_records": records.to_dict(orient="records")})
    assert response.status_code == 413


def test_metrics_expose_requests_latency_batches_queue_and_rejections(
        linear_server: ServerProcess) -> None:
    httpx.post(f"{linear_server.url}/invocations", content=b"{not json")
    rejected = _rejected(linear_server, "deadline")
    # A 1 us deadline passes while the request waits for its batch: 504, counted once.
    response = httpx.post(f"{linear_server.url}/invocations", headers={TIMEOUT: "0.001"},
                          json={"dataframe_records": flight_records(1).to_dict("records")})
    assert response.status_code == 504
    assert _rejected(linear_server, "deadline") == rejected + 1
    text = httpx.get(f"{linear_server.url}/metrics").text
    assert re.search(r'mlpipe_serving_requests_total\{code="400",endpoint="invocations"\}', text)
    assert "mlpipe_serving_request_latency_seconds_bucket" in text
    assert "mlpipe_serving_batch_rows_bucket" in text
    assert "mlpipe_serving_queue_depth" in text


def _rejected(server: ServerProcess, reason: str) -> float:
    """The rejection counter for `reason`; absent until the first one."""
    text = httpx.get(f"{server.url}/metrics").text
    found = re.search(rf'^mlpipe_serving_rejected_total\{{reason="{reason}"\}} (\S+)$', text, re.M)
    return float(found[1]) if found else 0.0


def test_priorities_on_both_protocols_and_the_version_header(linear_server: ServerProcess,
                                                             ) -> None:
    """Both levels are served and every 200 names the version; unknown levels are 400s."""
    records = flight_records(2, seed=11)
    infer = f"{linear_server.url}/v2/models/flight-delay-linear/infer"
    kserve_inputs = [{"name": tensor.name(), "shape": tensor.shape(),
                      "datatype": tensor.datatype(), "data": records[tensor.name()].tolist()}
                     for tensor in triton_inputs(records, binary=False)]
    answers = [httpx.post(f"{linear_server.url}/invocations", headers={PRIORITY: level},
                          json={"dataframe_records": records.to_dict("records")})
               for level in ("high", "low", "LOW")]
    answers += [httpx.post(infer, json={"inputs": kserve_inputs, "parameters": parameters})
                for parameters in ({"priority": "low"}, {"priority": 2}, {"priority": 0})]
    for response in answers:
        assert response.status_code == 200, response.text
        assert response.headers["x-model-version"] == "1"
    for response in answers[3:]:
        assert response.json()["model_version"] == "1"
    refused = [
        (httpx.post(f"{linear_server.url}/invocations", headers={PRIORITY: "urgent"},
                    json={"dataframe_records": records.to_dict("records")}), "message", PRIORITY),
        (httpx.post(infer, headers={PRIORITY: "urgent"}, json={"inputs": kserve_inputs}),
         "error", PRIORITY),
        (httpx.post(infer, json={"inputs": kserve_inputs, "parameters": {"priority": 7}}),
         "error", "parameters.priority"),
    ]
    for response, key, field in refused:
        assert response.status_code == 400
        assert field in response.json()[key]


def test_openapi_document_is_served(linear_server: ServerProcess) -> None:
    document = httpx.get(f"{linear_server.url}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/v2/models/{model_name}/infer" in document["paths"]
    assert "/invocations" in document["paths"]


def test_keras_model_served_as_compiled_function_equals_offline(keras_uri: str,
                                                                tmp_path_factory) -> None:
    """Binary FP32 tensors and MLflow `inputs` against the Keras model's own predict."""
    server = start_server(keras_uri, tmp_path_factory.mktemp("keras-server"))
    try:
        offline = mlflow.pyfunc.load_model(keras_uri)
        features = np.random.default_rng(8).normal(size=(300, 32)).astype(np.float32)
        expected = np.asarray(offline.predict(features)).reshape(300, -1)
        client = triton.InferenceServerClient(server.url.removeprefix("http://"))
        assert client.get_model_metadata("flight-delay-mlp")["inputs"] == [
            {"name": "input", "datatype": "FP32", "shape": [-1, 32]}]
        for binary in (True, False):
            tensor = triton.InferInput("input", list(features.shape), "FP32")
            tensor.set_data_from_numpy(features, binary_data=binary)
            result = client.infer("flight-delay-mlp", [tensor], outputs=[
                triton.InferRequestedOutput("predictions", binary_data=binary)])
            np.testing.assert_allclose(result.as_numpy("predictions"), expected, **TOLERANCE)
        response = httpx.post(f"{server.url}/invocations",
                              json={"inputs": features[:5].tolist()})
        np.testing.assert_allclose(response.json()["predictions"], expected[:5], **TOLERANCE)
    finally:
        assert server.stop() in GRACEFUL_EXIT


def test_a_model_that_cannot_load_ends_the_server_with_an_error(registry, tmp_path) -> None:
    server = start_server("models:/no-such-model/1", tmp_path, wait_ready=False)
    assert server.process.wait(120) == 3
    assert "could not load models:/no-such-model/1" in server.log_tail()
