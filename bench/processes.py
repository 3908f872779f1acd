"""Helpers for the real server processes that benchmarks start: a free port, and waiting
until the process answers. They are the project's process toolkit
(`pipelines.services.processes`), named here for the benchmarks that import them."""

from __future__ import annotations

from pipelines.services.processes import free_port, wait_for_http

__all__ = ["free_port", "wait_for_http"]
