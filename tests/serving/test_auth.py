"""Where the serving token comes from, and a server beyond loopback never open by accident."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.project import PROJECT_ROOT
from serving.auth import TOKEN_ENV, InsecureServingError, with_token
from serving.settings import load_settings

# An address of the benchmarking range: the server refuses before binding it.
BEYOND_LOOPBACK = "198.18.0.1"


def serve(*flags: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != TOKEN_ENV}
    return subprocess.run([sys.executable, "-m", "serving", "models:/any@champion", *flags],
                          capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
                          env={**environment, **(env or {})})


def private_file(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / "token"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_server_beyond_loopback_without_a_token_refuses_to_start_and_says_how() -> None:
    refused = serve("--host", BEYOND_LOOPBACK)
    assert refused.returncode == 2, refused.stderr
    assert f"serving.host '{BEYOND_LOOPBACK}'" in refused.stderr
    assert TOKEN_ENV in refused.stderr and "--insecure" in refused.stderr


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    shared = private_file(tmp_path, "t0ken\n", mode=0o644)
    refused = serve("--auth-token-file", str(shared))
    assert refused.returncode == 2
    assert f"serving.auth_token_file {shared} is readable by others (mode 644)" in refused.stderr


def test_the_token_comes_from_the_environment_then_the_file_then_the_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    token_file = str(private_file(tmp_path, "from-file\n"))
    settings = load_settings(auth_token="from-config", auth_token_file=token_file,
                             host=BEYOND_LOOPBACK)
    assert with_token(settings).auth_token == "from-file"
    assert with_token(load_settings(auth_token="from-config")).auth_token == "from-config"
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert with_token(settings).auth_token == "from-env"


@pytest.mark.parametrize(("overrides", "allowed"), [
    ({"host": "127.0.0.1"}, True), ({"host": "localhost"}, True), ({"host": "::1"}, True),
    ({"host": "0.0.0.0"}, False), ({"host": BEYOND_LOOPBACK}, False),
    ({"host": "0.0.0.0", "insecure": True}, True),
])
def test_only_loopback_serves_without_a_token_unless_told_insecure(
        overrides: dict, allowed: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    settings = load_settings(**overrides)
    if allowed:
        assert with_token(settings).auth_token == ""
    else:
        with pytest.raises(InsecureServingError, match="no token is set"):
            with_token(settings)
