"""The OpenAPI 3.0 document for the HTTP API, written by hand.

Written rather than generated so that it states the protocols' real request shapes;
the fuzz test (schemathesis) generates requests from it and expects no 5xx.
"""

from __future__ import annotations

from typing import Any

from serving.runtime import TensorSpec
from serving.tensors import DATETIME_NOTE

_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}}
_MLFLOW_ERROR = {"type": "object", "properties": {"error_code": {"type": "string"},
                                                  "message": {"type": "string"}}}
_TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {"type": "string", "enum": [
            "BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64",
            "FP16", "FP32", "FP64", "BYTES"]},
        "parameters": {"type": "object"},
        "data": {"type": "array", "items": {}},
    },
}


def _infer_request(inputs: tuple[TensorSpec, ...]) -> dict[str, Any]:
    """An infer request; tensor names are the model's when known."""
    tensor = _TENSOR
    if inputs:
        name = {"type": "string", "enum": [spec.name for spec in inputs]}
        tensor = {**_TENSOR, "properties": {**_TENSOR["properties"], "name": name}}
        dates = [spec.name for spec in inputs if spec.dtype.kind == "M"]
        if dates:
            tensor["description"] = f"Date-time inputs {dates}: {DATETIME_NOTE}."
    parameters = {"type": "object", "properties": {
        "binary_data_output": {"type": "boolean"},
        "timeout": {"type": "integer", "minimum": 1,
                    "description": "Queue deadline in microseconds (as Triton)."},
        "priority": {"oneOf": [{"type": "string", "enum": ["high", "low"]},
                               {"type": "integer", "enum": [0, 1, 2]}],
                     "description": "high or low; Triton's 0 (default: high), 1 (high), "
                                    "2 (low). Wins over the X-Request-Priority header."}}}
    outputs = {"type": "array", "items": {
        "type": "object", "required": ["name"],
        "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}}}}
    return {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"}, "parameters": parameters,
        "inputs": {"type": "array", "items": tensor}, "outputs": outputs}}


_INFER_RESPONSE = {
    "type": "object",
    "properties": {"model_name": {"type": "string"}, "model_version": {"type": "string"},
                   "id": {"type": "string"}, "outputs": {"type": "array", "items": _TENSOR}},
}


def _scoring_request(inputs: tuple[TensorSpec, ...]) -> dict[str, Any]:
    """Exactly one of the four layouts; rows are described field by field when known."""
    record: dict[str, Any] = {"type": "object"}
    if inputs:
        record.update(required=[spec.name for spec in inputs if spec.required],
                      properties={spec.name: _value_schema(spec) for spec in inputs})
    return {
        "type": "object",
        "description": "Exactly one of the four layouts, as the MLflow scoring server.",
        "properties": {
            "dataframe_split": {"type": "object", "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array", "items": {"type": "array", "items": {}}}}},
            "dataframe_records": {"type": "array", "items": record, "minItems": 1},
            "instances": {"oneOf": [{"type": "array", "items": record}, {"type": "object"}]},
            "inputs": {"oneOf": [{"type": "array", "items": {}}, {"type": "object"}]},
        },
    }


def _value_schema(spec: TensorSpec) -> dict[str, Any]:
    """One row's value of an input: a scalar by dtype, nested in arrays for tensors.

    Null is allowed where the dtype has a missing value (float, string, date-time).
    """
    kind = spec.dtype.kind
    schema: dict[str, Any] = {"type": "string" if kind in "USOM" else "boolean" if kind == "b"
                              else "integer" if kind in "iu" else "number"}
    if kind == "M":
        schema.update(description=DATETIME_NOTE, example="2013-01-05T05:15:00")
    if kind in "fOM":
        schema["nullable"] = True
    for size in reversed(spec.shape):
        schema = {"type": "array", "items": schema,
                  **({"minItems": size, "maxItems": size} if size > 0 else {})}
    return schema
_TIMEOUT_HEADER = {
    "name": "X-Request-Timeout-Ms", "in": "header", "required": False,
    "description": "Deadline in milliseconds from arrival; a request still queued then "
                   "gets 504 and is never run.",
    "schema": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
}


_PRIORITY_HEADER = {
    "name": "X-Request-Priority", "in": "header", "required": False,
    "description": "high (the default: interactive) or low (bulk). Batches fill from high "
                   "first; a low request waits at most serving.low_priority_max_wait_ms "
                   "before it is served as high.",
    "schema": {"type": "string", "enum": ["high", "low"]},
}

_VERSION_HEADER = {"X-Model-Version": {
    "description": "The model version that computed this answer",
    "schema": {"type": "string"}}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(schema: dict[str, Any], *codes: int) -> dict[str, Any]:
    reasons = {400: "Invalid input; the message names the field", 401: "Missing or wrong token",
               404: "Unknown model or version", 413: "Body or rows over the limit",
               503: "Loading, or the queue is full (then with Retry-After)",
               504: "Deadline passed while queued"}
    return {str(code): {"description": reasons[code], **_json(schema)} for code in codes}


def _health(summary: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "security": [], "responses": {
        "200": {"description": "Yes", **_json({"type": "object"})},
        "503": {"description": "Not yet", **_json({"type": "object"})}}}}


def openapi_document(model_name: str, inputs: tuple[TensorSpec, ...]) -> dict[str, Any]:
    """The document served at /openapi.json, for the model this server serves.

    Naming the model and its inputs lets a fuzzer reach the model with well-formed
    rows, not only the validation layer; `inputs` is empty while the model loads.
    """
    model_name_parameter = {"name": "model_name", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": [model_name]}}
    infer_responses = {
        "200": {"description": "Outputs; binary ones follow the JSON header",
                "headers": _VERSION_HEADER,
                "content": {"application/json": {"schema": _INFER_RESPONSE},
                            "application/octet-stream": {"schema": {"type": "string",
                                                                    "format": "binary"}}}},
        **_errors(_ERROR, 400, 401, 404, 413, 503, 504),
    }
    metadata = {"get": {"summary": "Model metadata: inputs and outputs",
                        "parameters": [model_name_parameter],
                        "responses": {"200": {"description": "Metadata", **_json({
                            "type": "object"})}, **_errors(_ERROR, 401, 404, 503)}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "mlpipe serving", "version": "1",
                 "description": "KServe v2 (Open Inference Protocol) with the binary tensor "
                                "data extension, the MLflow scoring protocol, and metrics."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/v2/health/live": _health("The process is up"),
            "/v2/health/ready": _health("The model is loaded and warmed up"),
            "/ping": _health("MLflow-style readiness"),
            "/health": _health("MLflow-style readiness"),
            "/v2": {"get": {"summary": "Server metadata", "responses": {
                "200": {"description": "Metadata", **_json({"type": "object"})},
                **_errors(_ERROR, 401)}}},
            "/v2/models/{model_name}": metadata,
            "/v2/models/{model_name}/ready": {"get": {
                "summary": "Whether this model is ready", "parameters": [model_name_parameter],
                "responses": {"200": {"description": "Ready", **_json({"type": "object"})},
                              **_errors(_ERROR, 401, 404, 503)}}},
            "/v2/models/{model_name}/infer": {"post": {
                "summary": "Inference (KServe v2)",
                "parameters": [model_name_parameter, _TIMEOUT_HEADER, _PRIORITY_HEADER, {
                    "name": "Inference-Header-Content-Length", "in": "header",
                    "required": False, "schema": {"type": "integer", "minimum": 1},
                    "description": "Length of the JSON header when binary data follows"}],
                "requestBody": {"required": True, **_json(_infer_request(inputs))},
                "responses": infer_responses}},
            "/invocations": {"post": {
                "summary": "Inference (MLflow scoring protocol)",
                "parameters": [_TIMEOUT_HEADER, _PRIORITY_HEADER],
                "requestBody": {"required": True, **_json(_scoring_request(inputs))},
                "responses": {
                    "200": {"description": "Predictions", "headers": _VERSION_HEADER,
                            **_json({"type": "object", "properties": {"predictions": {}}})},
                    **_errors(_MLFLOW_ERROR, 400, 401, 413, 503, 504)}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": {"description": "Text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}}},
                **_errors(_ERROR, 401)}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {
                "200": {"description": "OpenAPI 3.0", **_json({"type": "object"})},
                **_errors(_ERROR, 401)}}},
        },
    }
