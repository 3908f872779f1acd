"""`--watch`: a new version behind the alias is swapped in under steady load.

Version 1 takes an input `x` and returns 1*x; version 2 takes `z` and returns 2*z. Both
sleep 200 ms per call and a batch holds at most 4 requests, so with 16 clients a backlog
is always queued when the swap lands, decoded for the old version. Every
answer is checked: a 200 must come from the version its `x-model-version` header names
(the output proves it) and that must be the version whose schema the request used; a
request naming the schema that is not served is a 400 naming the served input; nothing
else, and in particular no 5xx from a request decoded for one version and run on the other.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow

from tests.serving.conftest import start_server
from tests.serving.models import log_scaled_model

NAME = "scaled-watch"
SCHEMA = {"1": "x", "2": "z"}  # version -> its input name
FACTOR = {"1": 1.0, "2": 2.0}
CLIENTS = 16
BEFORE_MOVE_S = 2.0
AFTER_V2_S = 1.5
MAX_WAIT_S = 30.0


@dataclass
class Answer:
    protocol: str
    schema: str
    value: float
    status: int
    version: str | None = None  # the x-model-version header
    body_version: str | None = None  # KServe's model_version
    output: float | None = None
    message: str = ""


async def ask(http: httpx.AsyncClient, protocol: str, schema: str, value: float) -> Answer:
    if protocol == "kserve":
        response = await http.post(f"/v2/models/{NAME}/infer", json={"inputs": [
            {"name": schema, "shape": [1], "datatype": "FP64", "data": [value]}]})
    else:
        response = await http.post("/invocations", json={
            "dataframe_split": {"columns": [schema], "data": [[value]]}})
    answer = Answer(protocol, schema, value, response.status_code,
                    response.headers.get("x-model-version"))
    document = response.json()
    if response.status_code != 200:
        answer.message = document.get("error") or document.get("message", "")
    elif protocol == "kserve":
        answer.body_version = document["model_version"]
        answer.output = document["outputs"][0]["data"][0]
    else:
        answer.output = document["predictions"][0]
    return answer


async def drive(url: str, version_2: str) -> list[Answer]:
    """CLIENTS closed-loop clients cycling through both schemas and protocols; the alias
    moves after BEFORE_MOVE_S, and the load goes on until version 2 has answered for
    AFTER_V2_S."""
    answers: list[Answer] = []
    kinds = itertools.cycle(itertools.product(("kserve", "invocations"), ("x", "z")))
    counter = itertools.count(1)
    first_v2: list[float] = []
    start = time.monotonic()

    def done() -> bool:
        now = time.monotonic()
        return now - start > MAX_WAIT_S or bool(first_v2) and now - first_v2[0] > AFTER_V2_S

    async with httpx.AsyncClient(base_url=url, timeout=30,
                                 limits=httpx.Limits(max_connections=CLIENTS)) as http:
        async def client() -> None:
            while not done():
                protocol, schema = next(kinds)
                answer = await ask(http, protocol, schema, float(next(counter) % 1000))
                answers.append(answer)
                if answer.version == "2" and not first_v2:
                    first_v2.append(time.monotonic())

        clients = [asyncio.ensure_future(client()) for _ in range(CLIENTS)]
        await asyncio.sleep(BEFORE_MOVE_S)
        await asyncio.to_thread(mlflow.MlflowClient().set_registered_model_alias,
                                NAME, "champion", version_2)
        await asyncio.gather(*clients)
    return answers


def test_swap_between_schemas_under_load_answers_every_request_from_one_version(
        registry: Path, tmp_path_factory) -> None:
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(NAME, "champion",
                                      log_scaled_model(NAME, "x", FACTOR["1"], delay_s=0.2))
    version_2 = log_scaled_model(NAME, "z", FACTOR["2"], delay_s=0.2)
    server = start_server(f"models:/{NAME}@champion", tmp_path_factory.mktemp("watch"),
                          "--watch", "--watch-interval-s", "0.2", "--max-delay-ms", "2",
                          "--max-batch-size", "4", "--allowed-batch-sizes", "[1, 2, 4]")
    try:
        answers = asyncio.run(drive(server.url, version_2))
        metadata = httpx.get(f"{server.url}/v2/models/{NAME}").json()
    finally:
        server.stop()

    assert {answer.status for answer in answers} <= {200, 400}, \
        [(a.status, a.message) for a in answers if a.status not in (200, 400)][:5]
    served = [answer for answer in answers if answer.status == 200]
    for answer in served:
        assert answer.schema == SCHEMA[answer.version], answer
        assert answer.output == FACTOR[answer.version] * answer.value, answer
        if answer.protocol == "kserve":
            assert answer.body_version == answer.version, answer
    for answer in answers:
        if answer.status == 400:  # the message proves which version it was decoded for
            other = "z" if answer.schema == "x" else "x"
            assert f"'{other}'" in answer.message, answer
    by_version = {(a.protocol, a.version) for a in served}
    assert by_version == {(p, v) for p in ("kserve", "invocations") for v in ("1", "2")}
    assert metadata["versions"] == ["2"]
