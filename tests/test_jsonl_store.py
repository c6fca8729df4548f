"""pathgen.jsonl_store: the one JSONL reader / atomic writer / resumable store, and the names
of the captioning side files (one Layout method used by captioning and the dataset reader)."""

from __future__ import annotations

import errno
import json
import os

import pytest

from pathgen import jsonl_store
from pathgen.captioning.stage import output_paths
from pathgen.captioning.store import CaptioningWriteError, PartialStore
from pathgen.dataset.records import DatasetInputError, companions, read_jsonl_lines
from pathgen.jsonl_store import ResumableJsonl, read_jsonl, write_jsonl
from pathgen.paths import Layout


def _enospc_on(store_cls, monkeypatch, nth: int):
    """The nth record write puts half its bytes on disk, then fails with ENOSPC."""
    real, seen = store_cls._write_all, {"n": 0}

    def write_all(fd, data):
        if data != b"\n":
            seen["n"] += 1
            if seen["n"] == nth:
                real(fd, data[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(store_cls, "_write_all", staticmethod(write_all))


def test_failed_append_is_rolled_back_and_raised(tmp_path, monkeypatch):
    p = tmp_path / "d.partial.jsonl"
    st = ResumableJsonl(p, key=lambda r: r["k"])
    _enospc_on(ResumableJsonl, monkeypatch, nth=2)
    st.append({"k": 1})
    with pytest.raises(OSError) as ei:
        st.append({"k": 2})
    assert ei.value.errno == errno.ENOSPC and 2 not in st
    assert p.read_text() == '{"k": 1}\n'  # the half-written record is gone
    monkeypatch.undo()
    st.append({"k": 3})  # the store reopens after the failure
    st.close()
    assert set(ResumableJsonl(p, key=lambda r: r["k"]).records) == {1, 3}


def test_captioning_store_is_the_same_store_with_its_error(tmp_path, monkeypatch):
    assert issubclass(PartialStore, ResumableJsonl)
    p = tmp_path / "s.partial.jsonl"
    _enospc_on(ResumableJsonl, monkeypatch, nth=1)
    with PartialStore(p) as st, pytest.raises(CaptioningWriteError) as ei:
        st.append({"x": 1, "y": 2, "status": "ok"})
    assert ei.value.path == p and "ENOSPC" in str(ei.value) and isinstance(ei.value.__cause__, OSError)
    assert p.read_bytes() == b""


def test_finalize_orders_and_drops_the_partial(tmp_path):
    p, final = tmp_path / "a.partial.jsonl", tmp_path / "a.jsonl"
    with ResumableJsonl(p, key=lambda r: r["k"]) as st:
        for k in (3, 1, 2):
            st.append({"k": k, "v": f"é{k}"})
        st.append({"k": 1, "v": "retried"})  # last record of a key wins
    recs = ResumableJsonl(p, key=lambda r: r["k"]).finalize(final, order=[1, 2, 3, 9])
    assert [r["v"] for r in recs] == ["retried", "é2", "é3"] and not p.exists()
    assert list(read_jsonl(final)) == recs


@pytest.mark.parametrize("data, needle", [
    (b'{"a": 1}\n\xff\xfe\n', "line 2 is not UTF-8 text"),
    (b'{"a": 1}\n\n{"a": \n', "line 3 is not valid JSON"),
    (b'[1, 2]\n', "line 1: expected a JSON object per line"),
])
def test_reader_names_file_line_and_the_callers_fix(tmp_path, data, needle):
    p = tmp_path / "S1.jsonl"
    p.write_bytes(data)
    with pytest.raises(ValueError, match=needle) as ei:
        list(read_jsonl(p))
    assert str(p) in str(ei.value)
    with pytest.raises(DatasetInputError) as ei:  # the dataset reader: its class + its fix
        read_jsonl_lines(p)
    assert needle in str(ei.value) and str(ei.value).endswith("re-run captioning for this slide")


def test_reader_gives_line_numbers_past_blank_lines(tmp_path):
    p = tmp_path / "x.jsonl"
    write_jsonl(p, [{"a": 1}])
    p.write_text(p.read_text() + "\n  \n" + json.dumps({"a": 2}) + "\n")
    assert list(jsonl_store.read_jsonl_lines(p)) == [(1, {"a": 1}), (4, {"a": 2})]


def test_caption_side_files_are_named_once(tmp_path):
    out = tmp_path / "captions_x" / "TCGA-01.svs-A.jsonl"
    files = Layout.caption_files(out)
    assert {k: v.name for k, v in files.items()} == {
        "captions": "TCGA-01.svs-A.jsonl", "rejects": "TCGA-01.svs-A.rejects.jsonl",
        "summary": "TCGA-01.svs-A.summary.json", "partial": "TCGA-01.svs-A.partial.jsonl"}
    assert all(v.parent == out.parent for v in files.values())
    assert output_paths(out) == files  # what captioning writes ...
    assert companions(out) == (files["rejects"], files["summary"])  # ... is what the dataset reads
