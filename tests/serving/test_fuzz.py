"""Schemathesis generates requests from our OpenAPI document: none may get a 5xx.

Run through its CLI, as a CI job would; its pytest plugin does not load under pytest 9.
Positive and negative modes both run: valid-looking inputs with odd values, and inputs
that break the schema on purpose. The document names the model's fields, so many
requests reach the model. 503 (queue full) and 504 (the client's own deadline) are
answers, not faults; see schemathesis_hooks.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from models.project import PROJECT_ROOT
from tests.serving.conftest import ServerProcess

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_no_request_from_the_openapi_document_gets_a_server_error(
        linear_server: ServerProcess, tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(SCHEMATHESIS), "run", f"{linear_server.url}/openapi.json",
         "--checks", "no_server_error_except_load_shedding", "--max-examples", "20", "--seed", "1",
         # One worker: with two, schemathesis's threads call ast.parse concurrently, and
         # CPython 3.11 can then raise a spurious "AST constructor recursion depth
         # mismatch" SystemError (python/cpython#106905) that fails the run.
         "--max-time", "45", "--request-timeout", "10", "--workers", "1",
         "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=180, cwd=PROJECT_ROOT,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.serving.schemathesis_hooks",
             "PYTHONPATH": str(PROJECT_ROOT)})
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]
    assert "passed" in completed.stdout.lower()
