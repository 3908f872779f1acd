"""Below the OpenAPI document: binary tensors and the raw HTTP layer, fuzzed.

test_fuzz.py sends what the document describes; these send what it cannot: KServe
binary-extension bodies whose JSON header, header length, datatypes, shapes and
`binary_data_size` disagree with each other and with the bytes that follow, and raw
bytes on a socket (request lines, headers, Content-Length and chunked framing that are
wrong). None may get a 5xx (503 with Retry-After excepted: that is load shedding), and
the server answers a good request correctly afterwards. Hypothesis runs a fixed,
derandomized corpus, so a failure reproduces.
"""

from __future__ import annotations

import json
import socket
import struct

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving.conftest import ServerProcess

MODEL = "flight-delay-linear"
DATATYPES = ("BOOL", "INT8", "INT32", "INT64", "UINT64", "FP16", "FP32", "FP64", "BYTES",
             "NOPE", "")
CORPUS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])

integers = st.one_of(st.integers(-3, 70), st.integers(-(2**70), 2**70),
                     st.sampled_from([2**31, 2**63, 2**64]))
sizes = st.one_of(integers, st.floats(allow_nan=True), st.text(max_size=4), st.none())
shapes = st.one_of(st.lists(integers, max_size=70), st.text(max_size=4), st.none())


def assert_not_a_fault(status: int, headers: dict[str, str], what: object) -> None:
    shed = status == 503 and "retry-after" in {name.lower() for name in headers}
    assert status < 500 or shed, f"{status} for {what!r}"


@pytest.fixture(scope="module")
def model_inputs(linear_server: ServerProcess) -> list[dict]:
    """The model's inputs as its metadata gives them: name, datatype, shape."""
    return httpx.get(f"{linear_server.url}/v2/models/{MODEL}", timeout=10).json()["inputs"]


NUMPY_TYPES = {"BOOL": "?", "INT8": "<i1", "INT32": "<i4", "INT64": "<i8", "UINT64": "<u8",
               "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}


def blob(datatype: str, values: list) -> bytes:
    """The binary extension's encoding: BYTES length-prefixed, numbers little-endian."""
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(value)) + value for value in values)
    return np.asarray(values).astype(NUMPY_TYPES[datatype]).tobytes()


@st.composite
def binary_bodies(draw: st.DrawFn, inputs: list[dict]) -> tuple[bytes, str]:
    """(body, Inference-Header-Content-Length): a well-formed request of 1-3 rows with
    0-2 things then made wrong (a datatype, a shape, a size, the header, the bytes)."""
    rows = draw(st.integers(1, 3))
    tensors, blobs = [], []
    for spec in inputs:
        datatype = spec["datatype"]
        if datatype == "BYTES":
            values = draw(st.lists(st.one_of(st.text(max_size=6).map(str.encode),
                                             st.binary(max_size=6)),
                                   min_size=rows, max_size=rows))
        else:
            values = draw(st.lists(st.one_of(st.integers(-5, 5), st.floats(width=32)),
                                   min_size=rows, max_size=rows))
        data = blob(datatype, values)
        tensors.append({"name": spec["name"], "datatype": datatype, "shape": [rows],
                        "parameters": {"binary_data_size": len(data)}})
        blobs.append(data)
    for _ in range(draw(st.integers(0, 2))):
        tensor = tensors[draw(st.integers(0, len(tensors) - 1))]
        wrong = draw(st.sampled_from(["datatype", "shape", "size", "drop", "twice"]))
        if wrong == "datatype":
            tensor["datatype"] = draw(st.sampled_from(DATATYPES))
        elif wrong == "shape":
            tensor["shape"] = draw(shapes)
        elif wrong == "size":
            tensor["parameters"]["binary_data_size"] = draw(sizes)
        elif wrong == "drop":
            position = tensors.index(tensor)
            tensors.pop(position)
            blobs.pop(position)
            if not tensors:
                break
        else:
            tensors.append(dict(tensor))
            blobs.append(blobs[tensors.index(tensor)])
    header = json.dumps({"inputs": tensors}).encode()
    body = header + b"".join(blobs)
    if draw(st.integers(0, 9)) == 0:  # the bytes themselves cut or lengthened
        body = body[:draw(st.integers(0, len(body)))] + draw(st.binary(max_size=8))
    length = draw(st.one_of(st.just(str(len(header))), st.just(str(len(header))),
                            integers.map(str), st.text(max_size=6)))
    return body, length


def test_binary_tensor_bodies_get_no_server_error(linear_server: ServerProcess,
                                                  model_inputs: list[dict]) -> None:
    url = f"{linear_server.url}/v2/models/{MODEL}/infer"
    log_from = log_size(linear_server)
    with httpx.Client(timeout=20) as client:

        @CORPUS
        @given(binary_bodies(model_inputs))
        def send(case: tuple[bytes, str]) -> None:
            body, length = case
            headers = {"Content-Type": "application/octet-stream"}
            if length.isascii() and length.isprintable():
                headers["Inference-Header-Content-Length"] = length
            response = client.post(url, content=body, headers=headers)
            seen.add(response.status_code)
            assert_not_a_fault(response.status_code, dict(response.headers), case)

        seen: set[int] = set()
        send()
        assert {200, 400} <= seen, f"the corpus reached too little of the server: {seen}"
    assert_still_serving(linear_server, log_from)


METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH",
                           "BREW", "G\x00T", ""])
PATHS = st.one_of(st.sampled_from(["/invocations", f"/v2/models/{MODEL}/infer",
                                   "/v2/health/ready", "/v2", "*", "//", "/%", "/%zz"]),
                  st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40)
                  .map(lambda text: "/" + text))
VERSIONS = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9", "HTTP/1.1x", ""])
TOKENS = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=20)


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    """A request as bytes on the wire, each part possibly wrong (one in eight right)."""
    if draw(st.integers(0, 7)) == 0:
        return b"GET /v2/health/ready HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n"
    line = f"{draw(METHODS)} {draw(PATHS)} {draw(VERSIONS)}"
    headers = [f"{name}: {value}" for name, value in draw(st.lists(
        st.tuples(st.one_of(st.sampled_from(["Host", "Content-Type", "Content-Length",
                                             "Transfer-Encoding", "Expect", "Connection",
                                             "Inference-Header-Content-Length"]),
                            TOKENS),
                  st.one_of(st.sampled_from(["chunked", "application/json", "-1",
                                             "99999999999999999999", "100-continue", "0"]),
                            TOKENS)),
        max_size=6))]
    body = draw(st.one_of(
        st.binary(max_size=64),
        st.just(b'{"dataframe_split": {"columns": [], "data": []}}'),
        st.builds(lambda size, data: b"%x\r\n" % size + data + b"\r\n",
                  st.integers(0, 2**40), st.binary(max_size=16))))
    head = "\r\n".join([line, *headers]).encode("latin-1")
    return head + draw(st.sampled_from([b"\r\n\r\n", b"\n\n", b"\r\n", b""])) + body


def first_status(sock: socket.socket) -> int | None:
    """The status code of the first response, if one comes before the server closes."""
    received = b""
    try:
        while b"\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    parts = received.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def test_raw_http_bytes_get_no_server_error(linear_server: ServerProcess) -> None:
    log_from = log_size(linear_server)

    @CORPUS
    @given(raw_requests())
    def send(request: bytes) -> None:
        with socket.create_connection(("127.0.0.1", linear_server.port), timeout=3) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            try:
                sock.sendall(request)
                sock.shutdown(socket.SHUT_WR)  # no more is coming: answer or close now
            except (BrokenPipeError, ConnectionResetError):
                return
            status = first_status(sock)
        seen.add(status)
        if status is not None:
            assert_not_a_fault(status, {"retry-after": ""} if status == 503 else {}, request)

    seen: set[int | None] = set()
    send()
    assert {400, 200} <= seen, f"the corpus reached too little of the server: {seen}"
    assert_still_serving(linear_server, log_from)


def log_size(server: ServerProcess) -> int:
    return server.log_path.stat().st_size


def assert_still_serving(server: ServerProcess, log_from: int) -> None:
    """Alive, ready, and no traceback in what it logged since `log_from` (a byte offset)."""
    assert server.process.poll() is None, server.log_tail()
    assert httpx.get(f"{server.url}/v2/health/ready", timeout=10).status_code == 200
    with server.log_path.open("rb") as log:
        log.seek(log_from)
        logged = log.read().decode(errors="replace")
    assert "Traceback" not in logged, logged[-5000:]
