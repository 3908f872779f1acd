"""The stand-ins' credentials: random on first start, kept private in their folder so a
restart finds the same ones, and never a fixed word that anyone reading the code knows."""

from __future__ import annotations

import secrets
from pathlib import Path

from models.private_files import read_private, write_private
from models.tracking_identity import TrackingIdentity, read_identity

SECRET_BYTES = 24


def private_folder(path: Path) -> Path:
    """``path`` as a folder only its owner may enter (mode 0700)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def kept_secret(path: Path) -> str:
    """The secret in ``path``, drawn at random and written there (0600) on first use."""
    if path.exists():
        return read_private(str(path), "the services' secret")
    private_folder(path.parent)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    write_private(path, secret)
    return secret


def kept_identity(path: Path, username: str) -> TrackingIdentity:
    """The tracking server user ``username`` kept in ``path`` (a ``mlflow.credentials_file``),
    with a random password on first use."""
    if path.exists():
        return read_identity(str(path))
    private_folder(path.parent)
    identity = TrackingIdentity(username, secrets.token_urlsafe(SECRET_BYTES))
    identity.write(path)
    return identity
