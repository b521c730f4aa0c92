from __future__ import annotations

import dataclasses
import errno
import os

import pytest

from pipeline.core.failures import Failure
from pipeline.ingest.scan import (
    InputError,
    InputVideo,
    assign_splits,
    fingerprint,
    list_inputs,
    manifest_table,
    probe_one,
)
from tests.media_fixtures import make_bad_inputs, make_clip


def test_folder_scan_ids_are_relative_paths_without_suffix(tmp_path):
    make_clip(tmp_path / "a" / "x.mp4", audio_rate=None)
    make_clip(tmp_path / "b.MOV", audio_rate=None)
    (tmp_path / "notes.txt").write_text("ignored")
    inputs = list_inputs(tmp_path, [".mp4", ".mov"])
    assert inputs.skipped == {".txt": 1} and inputs.failures == []
    assert [(i.video_id, i.path) for i in inputs.videos] == [
        ("a/x", str(tmp_path / "a" / "x.mp4")),
        ("b", str(tmp_path / "b.MOV")),
    ]


def test_duplicate_ids_fail_before_any_work(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    (tmp_path / "a.webm").write_bytes(b"")
    with pytest.raises(InputError, match="duplicate video_id.*'a'"):
        list_inputs(tmp_path, [".mp4", ".webm"])
    manifest = tmp_path / "m.csv"
    manifest.write_text("video_id,path\nx,a.mp4\nx,a.webm\n")
    with pytest.raises(InputError, match="duplicate video_id.*'x'"):
        list_inputs(manifest, [])


def test_manifest_paths_labels_and_splits(tmp_path):
    (tmp_path / "sub").mkdir()
    manifest = tmp_path / "sub" / "manifest.csv"
    manifest.write_text("video_id,path,label,split,extra\n1,clips/a.mp4,cat,test,z\n2,/abs/b.mp4,,,z\n")
    with pytest.raises(InputError, match=r"line 3 column 'path': '/abs/b.mp4' leaves the manifest's folder"):
        list_inputs(tmp_path / "sub", [])  # absolute paths elsewhere need ingest.allow_outside_paths
    inputs = list_inputs(tmp_path / "sub", [], allow_outside_paths=True)  # a folder holding manifest.csv uses it
    assert inputs.outside == 1
    assert inputs.videos == [
        InputVideo("1", str(tmp_path / "sub" / "clips" / "a.mp4"), "cat", "test"),
        InputVideo("2", "/abs/b.mp4", None, None),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("video_id\n1\n", "lacks required column"),
        ("video_id,path,split\n1,a.mp4,holdout\n", "line 2 column 'split': 'holdout'"),
        ("video_id,path\n,a.mp4\n", "line 2 column 'video_id': empty"),
    ],
)
def test_bad_manifests_are_clear_errors(tmp_path, text, message):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(InputError, match=message):
        list_inputs(tmp_path / "m.csv", [])


def test_fingerprint_follows_content_not_name(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 3_000_000)
    b.write_bytes(b"x" * 3_000_000)
    assert fingerprint(a) == fingerprint(b) and len(fingerprint(a)) == 32
    b.write_bytes(b"x" * 2_999_999 + b"y")
    assert fingerprint(a) != fingerprint(b)


def test_stratified_splits_balance_labels_and_are_deterministic(params):
    items = [InputVideo(f"v{i}", "", f"c{i % 4}") for i in range(40)]
    splits = assign_splits(items, params.ingest.split)
    assert splits == assign_splits(items, params.ingest.split)
    for label in ("c0", "c1", "c2", "c3"):
        got = [s for it, s in zip(items, splits) if it.label == label]
        assert (got.count("train"), got.count("valid"), got.count("test")) == (6, 2, 2)


def test_hash_splits_do_not_move_when_videos_are_added(params):
    cfg = dataclasses.replace(params.ingest.split, stratify=False)
    small = [InputVideo(f"v{i}", "") for i in range(50)]
    large = small + [InputVideo(f"w{i}", "") for i in range(50)]
    assert assign_splits(small, cfg) == assign_splits(large, cfg)[:50]
    assert {"train", "valid", "test"} == set(assign_splits(large, cfg))


def test_given_splits_are_kept(params):
    items = [InputVideo("a", "", "x", "test"), InputVideo("b", "", "x", None)]
    assert assign_splits(items, params.ingest.split)[0] == "test"


def test_every_bad_input_gets_a_failure_row_or_is_processed(tmp_path):
    expected = make_bad_inputs(tmp_path)
    items = list_inputs(tmp_path, [".mp4"]).videos
    (tmp_path / "gone.mp4").write_bytes(b"x")
    items.append(InputVideo("gone", str(tmp_path / "gone.mp4")))
    (tmp_path / "gone.mp4").unlink()
    expected["gone"] = "missing_file"
    results = {it.video_id: probe_one(it, "train") for it in items}
    assert set(results) == set(expected)
    for vid, reason in expected.items():
        got = results[vid]
        if reason is None:
            assert isinstance(got, dict), f"{vid}: {got}"
        else:
            assert isinstance(got, Failure) and got.reason == reason and got.message, f"{vid}: {got}"
    assert results["no_audio"]["has_audio"] is False
    assert results["one_frame"]["n_frames"] == 1
    assert (results["uhd"]["width"], results["uhd"]["height"]) == (3840, 2160)
    table = manifest_table([r for r in results.values() if isinstance(r, dict)])
    assert table.column("video_id").to_pylist() == sorted(v for v, r in expected.items() if r is None)


def test_unchanged_files_reuse_the_previous_row_and_changed_ones_are_probed(tmp_path, monkeypatch):
    import os

    from pipeline.ingest import scan as ingest

    clip = make_clip(tmp_path / "a.mp4", audio_rate=None)
    first = probe_one(InputVideo("a", str(clip), "x"), "train")
    assert isinstance(first, dict) and first["mtime_ns"] == os.stat(clip).st_mtime_ns
    previous = {str(clip): first}

    def no_probe(path):
        raise AssertionError("an unchanged file was probed again")

    monkeypatch.setattr(ingest, "probe", no_probe)
    again = probe_one(InputVideo("renamed", str(clip), "y"), "test", previous)
    assert again == first | {"video_id": "renamed", "label": "y", "split": "test"}
    monkeypatch.undo()
    os.utime(clip, ns=(first["mtime_ns"], first["mtime_ns"] + 10**9))  # touched: probed and hashed again
    touched = probe_one(InputVideo("a", str(clip), "x"), "train", previous)
    assert touched["mtime_ns"] == first["mtime_ns"] + 10**9 and touched["fingerprint"] == first["fingerprint"]


# ---- entries the listing cannot use: failure rows with a true reason, never skipped silently --------


def test_symlink_loops_are_failure_rows_and_other_entries_are_counted(tmp_path):
    make_clip(tmp_path / "ok.mp4", audio_rate=None)
    (tmp_path / "a.mp4").symlink_to("b.mp4")  # a -> b -> a
    (tmp_path / "b.mp4").symlink_to("a.mp4")
    (tmp_path / "self").symlink_to("self")  # no suffix: it may have been meant as a folder
    (tmp_path / "real").mkdir()
    make_clip(tmp_path / "real" / "in.mp4", audio_rate=None)
    (tmp_path / "linked").symlink_to(tmp_path / "real")  # a symlinked folder is not followed (it may loop)
    (tmp_path / "notes.txt").write_text("not a video")
    (tmp_path / "README").write_text("no suffix")
    (tmp_path / ".hidden.mp4").write_bytes(b"")
    inputs = list_inputs(tmp_path, [".mp4"])
    assert [v.video_id for v in inputs.videos] == ["ok", "real/in"]
    assert [(f.video_id, f.reason) for f in inputs.failures] == [
        ("a", "symlink_loop"),
        ("b", "symlink_loop"),
        ("self", "symlink_loop"),
    ]
    assert "Too many levels of symbolic links" in inputs.failures[0].message
    assert inputs.skipped == {".txt": 1, "(no suffix)": 1, "hidden entries": 1, "symlinked folders (not followed)": 1}
    # named in a manifest, a loop is reported by the probe (before: missing_file, "no such file")
    looped = probe_one(InputVideo("a", str(tmp_path / "a.mp4")), "train")
    assert isinstance(looped, Failure) and looped.reason == "symlink_loop"
    (tmp_path / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    dangling = probe_one(InputVideo("d", str(tmp_path / "dangling.mp4")), "train")
    assert dangling.reason == "missing_file" and "dangling symlink" in dangling.message


def _closed_folder(monkeypatch, folder):
    """What os.scandir does on a folder without read permission (root is never refused)."""
    real = os.scandir

    def scandir(path="."):
        if os.path.abspath(path) == str(folder):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def _unreadable_file(monkeypatch, target):
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if str(path) == str(target) else real(path, mode))


def test_an_unlistable_folder_is_a_failure_row(tmp_path, monkeypatch):
    make_clip(tmp_path / "ok.mp4", audio_rate=None)
    (tmp_path / "private").mkdir()
    make_clip(tmp_path / "private" / "x.mp4", audio_rate=None)
    _closed_folder(monkeypatch, tmp_path / "private")
    inputs = list_inputs(tmp_path, [".mp4"])
    assert [v.video_id for v in inputs.videos] == ["ok"]  # before: private/ skipped with no trace
    [failed] = inputs.failures
    assert (failed.video_id, failed.path, failed.reason) == ("private", str(tmp_path / "private"), "unlistable_folder")
    assert "Permission denied" in failed.message
    _closed_folder(monkeypatch, tmp_path)
    with pytest.raises(InputError, match=f"data.input: cannot list {tmp_path}: Permission denied"):
        list_inputs(tmp_path, [".mp4"])


def test_a_file_without_read_permission_is_a_failure_row(tmp_path, monkeypatch):
    clip = make_clip(tmp_path / "a.mp4", audio_rate=None)
    first = probe_one(InputVideo("a", str(clip)), "train")
    assert isinstance(first, dict)
    _unreadable_file(monkeypatch, clip)
    for previous in (None, {str(clip): first}):  # chmod keeps the mtime: the previous row is not reused
        got = probe_one(InputVideo("a", str(clip)), "train", previous)
        assert isinstance(got, Failure) and got.reason == "permission_denied", got  # before: unreadable / reused
        assert str(clip) in got.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and lists everything: the monkeypatched tests above cover it")
def test_real_permissions_give_the_same_rows(tmp_path):
    make_clip(tmp_path / "ok.mp4", audio_rate=None)
    secret = make_clip(tmp_path / "secret.mp4", audio_rate=None)
    (tmp_path / "private").mkdir()
    secret.chmod(0)
    (tmp_path / "private").chmod(0)
    try:
        inputs = list_inputs(tmp_path, [".mp4"])
        assert [(f.video_id, f.reason) for f in inputs.failures] == [("private", "unlistable_folder")]
        got = probe_one(next(v for v in inputs.videos if v.video_id == "secret"), "train")
        assert got.reason == "permission_denied"
    finally:
        (tmp_path / "private").chmod(0o755)
        secret.chmod(0o644)


def test_a_file_name_with_a_newline_is_a_failure_row_shown_escaped(tmp_path):
    make_clip(tmp_path / "ok.mp4", audio_rate=None)
    make_clip(tmp_path / "two\nlines.mp4", audio_rate=None)
    inputs = list_inputs(tmp_path, [".mp4"])
    assert [v.video_id for v in inputs.videos] == ["ok"]  # before: a video_id "two\nlines"
    [failed] = inputs.failures
    assert (failed.video_id, failed.reason) == ("two\\nlines", "bad_name")
    assert "\n" not in failed.message + failed.path and "rename" in failed.message


def test_a_manifest_id_with_a_control_character_is_an_error_naming_file_row_and_column(tmp_path):
    make_clip(tmp_path / "a.mp4", audio_rate=None)
    manifest = tmp_path / "manifest.parquet"
    __import__("pyarrow.parquet").parquet.write_table(
        __import__("pyarrow").table({"video_id": ["a\tb"], "path": ["a.mp4"]}), manifest
    )
    with pytest.raises(InputError) as err:
        list_inputs(manifest, [".mp4"])
    message = str(err.value)
    assert message.startswith(f"{manifest}: ") and "'video_id'" in message and "a\\tb" in message
    assert "\t" not in message and "\n" not in message
