"""The base of every configuration section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section: frozen, and unknown keys are errors rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
