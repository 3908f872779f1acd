"""KServe v2 / Open Inference Protocol codec, with the binary tensor data extension.

With the extension a body is a JSON header of `Inference-Header-Content-Length` bytes
followed by raw tensor bytes (little-endian, row-major; BYTES elements each prefixed
by a 4-byte length), which is what `tritonclient` sends with `binary_data=True`.
Reading those bytes with `np.frombuffer` is what lifts large requests above the JSON
decoding bound.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from serving.runtime import TensorSpec
from serving.tensors import (
    DATETIME_NOTE,
    KSERVE_TO_NUMPY,
    InvalidInput,
    check_shape,
    complete_columns,
    datetimes_as_text,
    dump_json,
    kserve_datatype,
    parse_json,
    to_array,
    travels_as_bytes,
)

HEADER_LENGTH = "inference-header-content-length"
# Bounds on what a client may declare, checked before numpy sees it: numpy's own
# dimension limit, an element count no body under the size limit can fill, and a day
# of Triton's microsecond `timeout` (beyond it no float conversion is meaningful).
MAX_DIMENSIONS = 64
MAX_ELEMENTS = 2**40
MAX_TIMEOUT_US = 86_400 * 10**6


@dataclass(frozen=True)
class InferRequest:
    """A decoded request: the model's columns plus what the response must echo or honour."""

    columns: dict[str, np.ndarray]
    rows: int
    request_id: str | None
    binary_outputs: dict[str, bool] | None  # requested outputs -> binary?, None = all
    binary_default: bool
    timeout_s: float | None
    # `parameters.priority` as sent (Triton spells it so); the app checks its value,
    # the same way for the x-request-priority header of both protocols.
    priority: object = None


def decode_request(body: bytes, header_length: str | None,
                   inputs: tuple[TensorSpec, ...]) -> InferRequest:
    """Parse and check an infer request against the model's inputs."""
    if header_length is not None:
        try:
            split = int(header_length)
        except ValueError:
            raise InvalidInput("Inference-Header-Content-Length: not an integer") from None
        if not 0 < split <= len(body):
            raise InvalidInput("Inference-Header-Content-Length: outside the body")
        header, binary = body[:split], memoryview(body)[split:]
    else:
        header, binary = body, memoryview(b"")
    document = _load_json(header)
    parameters = _object(document.get("parameters", {}), "parameters")
    tensors = document.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise InvalidInput("inputs: expected a non-empty list of tensors")
    specs = {spec.name: spec for spec in inputs}
    columns: dict[str, np.ndarray] = {}
    offset = 0
    for position, tensor in enumerate(tensors):
        tensor = _object(tensor, f"inputs[{position}]")
        name = tensor.get("name")
        if name not in specs:
            raise InvalidInput(f"inputs[{position}].name: unknown input {name!r}; "
                               f"the model takes {sorted(specs)}")
        array, offset = _decode_tensor(tensor, specs[name], binary, offset)
        columns[name] = check_shape(array, specs[name], f"input {name!r}")
    if offset != len(binary):
        raise InvalidInput(f"binary data: {len(binary) - offset} bytes not claimed by any input")
    columns, rows = complete_columns(columns, inputs, "inputs")
    return InferRequest(
        columns=columns,
        rows=rows,
        request_id=_optional_str(document.get("id"), "id"),
        binary_outputs=_requested_outputs(document.get("outputs")),
        binary_default=bool(parameters.get("binary_data_output", False)),
        timeout_s=_timeout(parameters.get("timeout")),
        priority=parameters.get("priority"),
    )


def encode_response(request: InferRequest, outputs: dict[str, np.ndarray], model_name: str,
                    version: str) -> tuple[bytes, dict[str, str]]:
    """The response body and extra headers; binary outputs follow the JSON header."""
    wanted = request.binary_outputs
    if wanted is None:
        wanted = dict.fromkeys(outputs, request.binary_default)
    unknown = [name for name in wanted if name not in outputs]
    if unknown:
        raise InvalidInput(f"outputs: unknown output(s) {unknown}; the model has {list(outputs)}")
    described: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, binary in wanted.items():
        value = datetimes_as_text(outputs[name])
        entry: dict[str, Any] = {"name": name, "datatype": kserve_datatype(value.dtype),
                                 "shape": list(value.shape)}
        if binary:
            blob = _to_bytes(value)
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = _json_values(value)
        described.append(entry)
    document: dict[str, Any] = {"model_name": model_name, "model_version": version,
                                "outputs": described}
    if request.request_id is not None:
        document["id"] = request.request_id
    header = dump_json(document)
    if not blobs:
        return header, {}
    return b"".join([header, *blobs]), {"Inference-Header-Content-Length": str(len(header))}


def tensor_metadata(specs: tuple[TensorSpec, ...]) -> list[dict[str, Any]]:
    """Inputs or outputs as the model metadata endpoint lists them.

    The datatype alone cannot tell a client that a BYTES input holds date-times or
    that it may be left out, so `parameters` says so where it applies.
    """
    described = []
    for spec in specs:
        entry: dict[str, Any] = {"name": spec.name, "datatype": kserve_datatype(spec.dtype),
                                 "shape": [-1, *spec.shape]}
        parameters: dict[str, Any] = {}
        if spec.dtype.kind == "M":
            parameters["content"] = DATETIME_NOTE
        if not spec.required:
            parameters["optional"] = True
        if parameters:
            entry["parameters"] = parameters
        described.append(entry)
    return described


def _decode_tensor(tensor: dict, spec: TensorSpec, binary: memoryview,
                   offset: int) -> tuple[np.ndarray, int]:
    field = f"input {spec.name!r}"
    datatype = tensor.get("datatype")
    if datatype not in KSERVE_TO_NUMPY:
        raise InvalidInput(f"{field}: unknown datatype {datatype!r}")
    if (datatype == "BYTES") != travels_as_bytes(spec.dtype):
        raise InvalidInput(
            f"{field}: datatype {datatype} does not fit the model's {spec.dtype.name} input"
        )
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not shape or not all(
        isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0 for dim in shape
    ):
        raise InvalidInput(f"{field}: shape must be a non-empty list of non-negative integers")
    if len(shape) > MAX_DIMENSIONS:
        raise InvalidInput(f"{field}: shape has {len(shape)} dimensions, at most "
                           f"{MAX_DIMENSIONS} are supported")
    if math.prod(dim for dim in shape if dim) > MAX_ELEMENTS:  # a zero still shapes an array
        raise InvalidInput(f"{field}: shape {shape} is over {MAX_ELEMENTS} elements")
    count = math.prod(shape)
    size = _object(tensor.get("parameters", {}), f"{field} parameters").get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise InvalidInput(f"{field}: binary_data_size runs past the end of the body")
        raw = binary[offset:offset + size]
        offset += size
        array = _from_bytes(raw, datatype, count, field)
    else:
        data = tensor.get("data")
        if not isinstance(data, list):
            raise InvalidInput(f"{field}: data must be a list (or use binary_data_size)")
        array = to_array(data, _as_spec(spec, datatype), field).reshape(-1)
        if array.size != count:
            raise InvalidInput(f"{field}: shape {shape} needs {count} values, got {array.size}")
    return to_array(array.reshape(shape), spec, field), offset


def _as_spec(spec: TensorSpec, datatype: str) -> TensorSpec:
    """The spec with the client's declared datatype, so JSON values are checked against it."""
    return replace(spec, dtype=KSERVE_TO_NUMPY[datatype])


def _from_bytes(raw: memoryview, datatype: str, count: int, field: str) -> np.ndarray:
    if datatype != "BYTES":
        dtype = KSERVE_TO_NUMPY[datatype].newbyteorder("<")
        if len(raw) != count * dtype.itemsize:
            raise InvalidInput(f"{field}: {len(raw)} bytes do not hold {count} {datatype} values")
        return np.frombuffer(raw, dtype=dtype)
    if count * 4 > len(raw):  # checked before allocating: shape comes from the client
        raise InvalidInput(f"{field}: {len(raw)} bytes cannot hold {count} BYTES elements")
    items = np.empty(count, dtype=object)
    position = 0
    for index in range(count):
        if position + 4 > len(raw):
            raise InvalidInput(f"{field}: BYTES data ends after {index} of {count} elements")
        (length,) = struct.unpack_from("<I", raw, position)
        position += 4
        if position + length > len(raw):
            raise InvalidInput(f"{field}: BYTES element {index} runs past the data")
        try:
            items[index] = bytes(raw[position:position + length]).decode()
        except UnicodeDecodeError:
            raise InvalidInput(f"{field}: BYTES element {index} is not UTF-8") from None
        position += length
    if position != len(raw):
        raise InvalidInput(f"{field}: {len(raw) - position} bytes left after {count} elements")
    return items


def _to_bytes(value: np.ndarray) -> bytes:
    if value.dtype.kind not in "USO":
        return np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<")).tobytes()
    parts = []
    for item in value.reshape(-1):
        encoded = item if isinstance(item, bytes) else str(item).encode()
        parts.append(struct.pack("<I", len(encoded)))
        parts.append(encoded)
    return b"".join(parts)


def _json_values(value: np.ndarray) -> list:
    flat = value.reshape(-1)
    if value.dtype.kind in "SO":
        return [item.decode() if isinstance(item, bytes) else str(item) for item in flat]
    return flat.tolist()


def _requested_outputs(outputs: object) -> dict[str, bool] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise InvalidInput("outputs: expected a list")
    wanted = {}
    for position, output in enumerate(outputs):
        output = _object(output, f"outputs[{position}]")
        name = output.get("name")
        if not isinstance(name, str):
            raise InvalidInput(f"outputs[{position}].name: expected a string")
        parameters = _object(output.get("parameters", {}), f"outputs[{position}].parameters")
        wanted[name] = bool(parameters.get("binary_data", False))
    return wanted


def _timeout(value: object) -> float | None:
    """Triton's `timeout` request parameter is in microseconds."""
    if value is None:
        return None
    if (not isinstance(value, int | float) or isinstance(value, bool) or value <= 0
            or value > MAX_TIMEOUT_US):
        raise InvalidInput("parameters.timeout: expected a positive number of microseconds, "
                           f"at most {MAX_TIMEOUT_US} (a day)")
    return value / 1e6


def _load_json(header: bytes) -> dict:
    return _object(parse_json(header), "body")


def _object(value: object, field: str) -> dict:
    if not isinstance(value, dict):
        raise InvalidInput(f"{field}: expected a JSON object")
    return value


def _optional_str(value: object, field: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{field}: expected a string")
    return value
