"""The base of every configuration section, and the error a section's own checks raise."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: frozen, and unknown keys are errors rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DeclarationError(ValueError):
    """A problem at ``key``, a path below the section that raised it, so that the config
    error names that key and the file or ``--set`` that wrote it."""

    def __init__(self, key: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.key = key
