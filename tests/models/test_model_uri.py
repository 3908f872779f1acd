"""The model-URI grammar: what is written parses back, and a malformed registry URI is
refused by name before MLflow sees it."""

from __future__ import annotations

import pytest

from models.model_uri import (
    RegisteredUri,
    alias_uri,
    is_registered,
    parse_alias,
    parse_registered,
    run_uri,
    version_uri,
)
from serving.registry import alias_of, model_name_from_uri, resolve_version


def test_written_uris_parse_back() -> None:
    assert version_uri("flight-delay-mlp", 7) == "models:/flight-delay-mlp/7"
    assert parse_registered(version_uri("flight-delay-mlp", 7)) == RegisteredUri(
        "flight-delay-mlp", version="7")
    assert parse_registered(alias_uri("flight-delay-mlp", "champion")) == RegisteredUri(
        "flight-delay-mlp", alias="champion")
    assert parse_alias("models:/m@candidate/") == RegisteredUri("m", alias="candidate")
    assert parse_registered("models:/m/latest") == RegisteredUri("m", version="latest")


def test_other_uris_are_not_registered() -> None:
    for uri in (run_uri("abc123", "model"), "/tmp/model", "s3a://bucket/model"):
        assert not is_registered(uri) and parse_registered(uri) is None
    assert model_name_from_uri(run_uri("abc123", "model")) == "model"
    # Not registered, so nothing to pin: loaded as given, reported as version 1.
    assert resolve_version(run_uri("abc123", "model")) == ("runs:/abc123/model", "1")


@pytest.mark.parametrize("uri", ["models:/", "models:/m", "models:/m/", "models:/@champion",
                                 "models:/m/3/extra", "models:/m@a@b", "models:/m@"])
def test_a_malformed_registry_uri_is_refused_by_name(uri: str) -> None:
    with pytest.raises(ValueError, match=r"is not a registered model URI; expected "
                                         r"models:/<name>/<version> or models:/<name>@<alias>"
                       ) as info:
        parse_registered(uri)
    assert repr(uri) in str(info.value)
    # Serving refuses it the same way, rather than serving a model named after a fragment.
    with pytest.raises(ValueError, match="not a registered model URI"):
        model_name_from_uri(uri)


def test_only_an_alias_can_be_followed() -> None:
    assert alias_of(alias_uri("m", "champion")) == ("m", "champion")
    assert alias_of(version_uri("m", 3)) is None
    with pytest.raises(ValueError, match=r"'models:/m/3' names no alias"):
        parse_alias(version_uri("m", 3))
