"""conf/serving.yaml is the one place defaults live, and ServingSettings guards it."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from serving.__main__ import parse_args, settings_from_args
from serving.settings import DEFAULT_CONF, ServingSettings, load_settings


def test_the_shipped_file_is_complete_and_valid() -> None:
    document = yaml.safe_load(DEFAULT_CONF.read_text())
    assert list(document) == ["serving"]
    settings = ServingSettings.model_validate(document["serving"])
    assert settings.host == "127.0.0.1"
    assert settings.workers == 1
    assert settings.auth_token == ""


def test_every_field_is_required_so_no_default_hides_in_the_schema() -> None:
    values = yaml.safe_load(DEFAULT_CONF.read_text())["serving"]
    del values["port"]
    with pytest.raises(ValidationError, match="port"):
        ServingSettings.model_validate(values)


def test_unknown_keys_and_mutation_are_refused() -> None:
    with pytest.raises(ValidationError, match="prot"):
        load_settings(prot=8081)
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


def test_batch_sizes_must_cover_max_batch_size() -> None:
    with pytest.raises(ValidationError, match="largest allowed batch size"):
        load_settings(max_batch_size=512)
    with pytest.raises(ValidationError, match="strictly increasing"):
        load_settings(allowed_batch_sizes=[4, 2])


def test_command_line_flags_override_the_file_by_key() -> None:
    args = parse_args(["models:/m@champion", "--port", "8081",
                       "--allowed-batch-sizes", "[1, 8, 64]", "--max-batch-size", "64"])
    settings = settings_from_args(args)
    assert (settings.port, settings.allowed_batch_sizes, settings.max_batch_size) == (
        8081, (1, 8, 64), 64)
    assert settings.max_queue == load_settings().max_queue
