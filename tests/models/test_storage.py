"""The storage layer on a local folder: whole-file writes, listings, moves and the lock's CAS."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.storage import ObjectStoreSettings, Storage, is_remote, join


@pytest.fixture
def storage() -> Storage:
    # The object-store settings are never used for local locations.
    return Storage(ObjectStoreSettings(endpoint="", region="us-east-1", path_style_access=True,
                                       connect_timeout_s=1.0))


@pytest.fixture
def root(tmp_path: Path) -> str:
    return str(tmp_path / "root")


def test_join_keeps_uris_whole() -> None:
    assert join("s3a://bucket/root/", "/lake/", "bronze") == "s3a://bucket/root/lake/bronze"
    assert join("/data", "state", "pipeline.lock") == "/data/state/pipeline.lock"


def test_only_local_paths_and_object_store_uris_are_accepted() -> None:
    assert not is_remote("/data") and not is_remote("data") and not is_remote("file:///data")
    assert is_remote("s3a://bucket/root") and is_remote("s3://bucket")
    with pytest.raises(ValueError, match="unsupported storage scheme 'gs'"):
        is_remote("gs://bucket/root")


def test_write_then_read_creates_folders_and_leaves_no_temporary_file(storage: Storage,
                                                                      root: str) -> None:
    location = join(root, "a", "b", "note.txt")
    storage.write_text(location, "first")
    storage.write_text(location, "second")  # a rewrite replaces the whole file
    assert storage.read_text(location) == "second"
    assert storage.read_bytes(f"file://{location}") == b"second"
    assert os.listdir(join(root, "a", "b")) == ["note.txt"]


def test_exists_and_is_dir(storage: Storage, root: str) -> None:
    location = join(root, "folder", "file.bin")
    assert not storage.exists(location) and not storage.is_dir(join(root, "folder"))
    storage.write_bytes(location, b"\x00\x01")
    assert storage.exists(location) and not storage.is_dir(location)
    assert storage.exists(join(root, "folder")) and storage.is_dir(join(root, "folder"))


def test_list_files_is_recursive_sorted_and_hides_work_in_progress(storage: Storage,
                                                                   root: str) -> None:
    for name, text in (("b.csv", "bb"), ("a/c.csv", "ccc"), (".a.csv.tmp", "x"),
                       ("_staging/part-0.csv", "x"), ("a/_SUCCESS", ""), ("a/.c.csv.crc", "x")):
        storage.write_text(join(root, name), text)
    assert storage.list_files(root) == [("a/c.csv", 3), ("b.csv", 2)]
    # Hidden parts count only below the location asked for.
    assert storage.list_files(join(root, "_staging")) == [("part-0.csv", 1)]
    assert storage.list_files(join(root, "missing")) == []
    assert storage.list_files(join(root, "b.csv")) == []


def test_move_upload_and_delete(storage: Storage, root: str, tmp_path: Path) -> None:
    source, target = join(root, "_staging", "part-0.csv"), join(root, "landing", "x.csv")
    storage.write_text(source, "rows")
    storage.move(source, target)
    assert not storage.exists(source) and storage.read_text(target) == "rows"

    local = tmp_path / "local.txt"
    local.write_text("uploaded")
    storage.upload(str(local), join(root, "up", "copy.txt"))
    assert storage.read_text(join(root, "up", "copy.txt")) == "uploaded"

    storage.delete(target)
    storage.delete(target)  # a missing file is not an error
    assert not storage.exists(target)
    storage.delete_dir(join(root, "up"))
    storage.delete_dir(join(root, "up"))  # nor is a missing folder
    assert not storage.exists(join(root, "up")) and storage.is_dir(join(root, "landing"))


def test_create_exclusive_succeeds_once(storage: Storage, root: str) -> None:
    location = join(root, "state", "pipeline.lock")
    assert storage.create_exclusive(location, b"first")
    assert not storage.create_exclusive(location, b"second")
    assert storage.read_bytes(location) == b"first"
    assert os.listdir(join(root, "state")) == ["pipeline.lock"]


def test_replace_tagged_refuses_a_stale_tag(storage: Storage, root: str) -> None:
    location = join(root, "state", "pipeline.lock")
    assert storage.read_tagged(location) is None
    assert not storage.replace_tagged(location, b"new", "any-tag")  # nothing to replace
    assert not storage.exists(location)

    storage.write_bytes(location, b"one")
    data, tag = storage.read_tagged(location)
    assert data == b"one"
    storage.write_bytes(location, b"two")  # someone else rewrites it meanwhile
    assert not storage.replace_tagged(location, b"mine", tag)
    assert storage.read_bytes(location) == b"two"

    _, current = storage.read_tagged(location)
    assert current != tag
    assert storage.replace_tagged(location, b"mine", current)
    assert storage.read_bytes(location) == b"mine"
    assert not storage.replace_tagged(location, b"again", current)  # the tag moved on


def test_delta_options_of_a_local_table(storage: Storage, tmp_path: Path) -> None:
    assert storage.delta_options(f"file://{tmp_path}/t") == (f"{tmp_path}/t", {})
