"""The base of every configuration section, and the error a section's own checks raise."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class Section(BaseModel):
    """A config section: frozen, and unknown keys are errors rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DeclarationError(ValueError):
    """A problem at ``key``, a path below the section that raised it, so that the config
    error names that key and the file or ``--set`` that wrote it."""

    def __init__(self, key: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.key = key


def check_import_path(value: str, key: tuple[str | int, ...], example: str) -> None:
    """``value`` looks like ``package.module:function``, or a DeclarationError at ``key``."""
    if not IMPORT_PATH.match(value):
        raise DeclarationError(key, f"{value!r} is not an import path like "
                                    f"package.module:function, e.g. {example}")
