"""Run state through the storage layer: location summaries and the recorded fingerprints."""

from __future__ import annotations

import pytest

from models.storage import join
from pipelines.orchestration.state import PipelineState, location_state
from pipelines.platform.config import Config
from pipelines.platform.layout import Layout


def test_folder_state_changes_with_its_files_only(config: Config) -> None:
    layout = Layout.of(config)
    storage, folder = layout.storage, layout.landing("flights")
    assert location_state(folder, storage) == "missing"
    storage.write_text(join(folder, "2013-01-01.csv"), "a\n1\n")
    first = location_state(folder, storage)
    assert first["files"] == 1
    # Work in progress (hidden names) is not data yet: the state stays the same.
    storage.write_text(join(folder, "_synthesize-1", "part-0.csv"), "a\n2\n")
    storage.write_text(join(folder, ".2013-01-02.csv.tmp"), "a\n")
    assert location_state(folder, storage) == first
    storage.write_text(join(folder, "2013-01-01.csv"), "a\n1\n3\n")  # rewritten: other size
    assert location_state(folder, storage) not in (first, "missing")


def test_delta_table_state_is_its_newest_commit(config: Config) -> None:
    layout = Layout.of(config)
    storage, table = layout.storage, layout.table("bronze", "flights")
    log = join(table, "_delta_log")
    for name in ("00000000000000000000.json", "00000000000000000001.json",
                 "00000000000000000001.checkpoint.parquet", "_last_checkpoint"):
        storage.write_text(join(log, name), "{}")
    storage.write_text(join(table, "part-0.parquet"), "x")
    assert location_state(table, storage) == {"delta_version": 1}
    storage.write_text(join(log, "00000000000000000002.json"), "{}")
    assert location_state(table, storage) == {"delta_version": 2}


def test_recorded_fingerprints_survive_a_restart(config: Config) -> None:
    layout = Layout.of(config)
    state = PipelineState(layout.storage, layout.pipeline_state)
    assert not state.unchanged("ingest", "abc")
    state.record("ingest", "abc", headline="ok")
    again = PipelineState(layout.storage, layout.pipeline_state)
    assert again.unchanged("ingest", "abc") and not again.unchanged("ingest", "abd")
    assert again.steps["ingest"] == {"fingerprint": "abc", "headline": "ok"}
    assert not again.unchanged("features", "")  # a step that cannot tell always runs


@pytest.mark.parametrize("torn", ["", "{\"ingest\": {\"finger", "[1, 2]"])
def test_an_unreadable_state_file_is_reported_and_treated_as_empty(
        config: Config, torn: str, caplog: pytest.LogCaptureFixture) -> None:
    layout = Layout.of(config)
    layout.storage.write_text(layout.pipeline_state, torn)
    state = PipelineState(layout.storage, layout.pipeline_state)
    assert state.steps == {}
    assert f"{layout.pipeline_state} is unreadable" in caplog.text
    state.record("ingest", "abc")  # and the next success writes a good file again
    assert PipelineState(layout.storage, layout.pipeline_state).unchanged("ingest", "abc")
