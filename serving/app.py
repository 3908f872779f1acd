"""The application: the inference routes (plain ASGI, serving/inference.py) in front of a
Starlette app for health, metadata, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from serving import kserve
from serving.auth import requires_token
from serving.inference import InferenceRoutes
from serving.metrics import MetricsMiddleware, metrics
from serving.openapi import openapi_document
from serving.protocol import set_read_timeout
from serving.replies import check_model
from serving.runtime import remove_own_folders
from serving.settings import ServingSettings
from serving.state import ServingState


def create_app(model_uri: str, settings: ServingSettings, *,
               watch: bool = False) -> InferenceRoutes:
    """The app for one model; it starts loading the model when the server starts."""
    state = ServingState(model_uri, settings, watch)
    set_read_timeout(settings.request_read_timeout_s)  # for the connections it will accept

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loader = asyncio.create_task(state.load(), name="model-loader")
        yield
        loader.cancel()
        await asyncio.gather(loader, return_exceptions=True)
        if state.batcher is not None:
            await state.batcher.stop()
        remove_own_folders()

    model = "/v2/models/{model_name}"
    versioned = "/v2/models/{model_name}/versions/{model_version}"
    routes = [
        Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        Route("/ping", ready),
        Route("/health", ready),
        Route("/v2", requires_token(server_metadata)),
        Route(model, requires_token(model_metadata)),
        Route(versioned, requires_token(model_metadata)),
        Route(f"{model}/ready", requires_token(model_ready)),
        Route(f"{versioned}/ready", requires_token(model_ready)),
        Route("/metrics", requires_token(metrics)),
        Route("/openapi.json", requires_token(openapi)),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(MetricsMiddleware)], lifespan=lifespan)
    app.state.serving = state
    return InferenceRoutes(app, state)


def _state(request: Request) -> ServingState:
    return request.app.state.serving


async def live(request: Request) -> Response:
    """The process answers; says nothing about the model."""
    return JSONResponse({"live": True})


async def ready(request: Request) -> Response:
    """Ready once the model is loaded and warmed up at every allowed batch size."""
    is_ready = _state(request).batcher is not None
    return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)


async def server_metadata(request: Request) -> Response:
    return JSONResponse({"name": "mlpipe-serving", "version": "1",
                         "extensions": ["binary_tensor_data"]})


async def model_metadata(request: Request) -> Response:
    state = _state(request)
    problem = _check_model(request, state)
    if problem is not None:
        return problem
    runtime = state.runtime()
    return JSONResponse({
        "name": state.name, "versions": [runtime.version], "platform": "mlflow",
        "inputs": kserve.tensor_metadata(runtime.inputs),
        "outputs": kserve.tensor_metadata(runtime.outputs),
    })


async def model_ready(request: Request) -> Response:
    problem = _check_model(request, _state(request))
    return problem or JSONResponse({"name": _state(request).name, "ready": True})


async def openapi(request: Request) -> Response:
    state = _state(request)
    inputs = state.runtime().inputs if state.batcher is not None else ()
    return JSONResponse(openapi_document(state.name, inputs))


def _check_model(request: Request, state: ServingState) -> Response | None:
    """404 for a name or version we do not serve, 503 while the model loads."""
    problem = check_model(state, request.path_params["model_name"],
                          request.path_params.get("model_version"))
    return None if problem is None else problem.as_response()
