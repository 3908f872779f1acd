"""Batched HTTP inference for MLflow models: `mlpipe serve MODEL_URI`.

Modules, one job each: settings (the typed `serving:` config), server (`serve()`, uvicorn),
app (routes), state (load, readiness, alias swap), batching (the dynamic batching
queue), runtime (load an MLflow model, warm up, padded predict), kserve and scoring
(the two protocol codecs), tensors (input checks shared by both), metrics (Prometheus),
auth (bearer token), watcher (`--watch`), registry (what a model URI names), openapi.
Depends on `models` and MLflow, never on `pipelines`.
"""
