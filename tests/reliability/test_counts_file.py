"""The reliability counts go where they are asked to, and never into the tracked file by default."""

from __future__ import annotations

import json
import tempfile

from tests import helpers as rc


def _finish_with_one_row(monkeypatch, row):
    monkeypatch.setitem(rc._counts, row, {"cases": 3, "outcomes": {"ok": 3}, "rows_lost": 0})
    try:
        rc.write_counts()
    finally:
        rc._counts.pop(row, None)  # not for the real end of this session


def test_counts_go_to_the_temp_dir_unless_asked(tmp_path, monkeypatch):
    tracked = rc.TRACKED_COUNTS.read_bytes()
    monkeypatch.delenv("LIVEKIT_LAB_COUNTS", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _finish_with_one_row(monkeypatch, "test row: default place")
    out = tmp_path / "livekit_lab-reliability-counts.json"
    assert json.loads(out.read_text())["test row: default place"] == {"cases": 3, "outcomes": {"ok": 3}, "rows_lost": 0}
    assert rc.TRACKED_COUNTS.read_bytes() == tracked


def test_counts_go_where_the_variable_says_and_merge(tmp_path, monkeypatch):
    target = tmp_path / "counts.json"
    target.write_text(json.dumps({"older row": {"cases": 1, "outcomes": {"x": 1}, "rows_lost": 0}}))
    monkeypatch.setenv("LIVEKIT_LAB_COUNTS", str(target))
    _finish_with_one_row(monkeypatch, "test row: asked for")
    got = json.loads(target.read_text())
    # rows counted earlier in this pytest session are written too; the stored row must survive the merge
    assert got["older row"] == {"cases": 1, "outcomes": {"x": 1}, "rows_lost": 0}
    assert got["test row: asked for"] == {"cases": 3, "outcomes": {"ok": 3}, "rows_lost": 0}
    assert set(got) == {"older row", "test row: asked for"} | set(rc._counts)
