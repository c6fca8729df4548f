"""build_dataset and build_instruct stream (issue 19 part 1): the pieces that replace
whole-list steps give what those steps gave, and memory does not grow with the records.
Whole-output equality with the in-memory implementation: tests/test_build_reference.py."""

from __future__ import annotations

import gc
import json
import pathlib
import random
import tracemalloc

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pathgen.atomic import json_array_writer, write_json
from pathgen.config.dataset import DatasetConfig
from pathgen.config.instruct import InstructConfig
from pathgen.dataset import build_dataset
from pathgen.dataset.card import CardStats, gallery_picks, length_stats, token_counter
from pathgen.instruct import build as ib
from pathgen.jsonl_store import ResumableJsonl


@pytest.mark.parametrize("indent", [None, 2])
def test_json_array_writer_is_write_json(tmp_path, indent):
    for items in ([], [1], [{"a": [1, {"b": "x\ny"}], "c": {}}, [], "é", None], [{"k": []}] * 3,
                  [{1: "int key", "f": 1.5, "t": (1, 2)}, float("inf"), 2**70]):
        write_json(tmp_path / "a.json", items, indent=indent)
        with json_array_writer(tmp_path / "b.json", indent) as add:
            for it in items:
                add(it)
        assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_json_array_writer_leaves_no_garbage_cycles(tmp_path):
    """json.dumps(indent=...) leaves reference cycles per call; item by item over millions of
    items that garbage would pile up until a full collection."""
    gc.collect()
    gc.disable()
    try:
        with json_array_writer(tmp_path / "c.json", 2) as add:
            for _ in range(200):
                add({"id": "x", "conversations": [{"from": "human", "value": "v"}], "position": ["1", "2"]})
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_length_stats_from_counts_is_numpy():
    rng = random.Random(0)
    for _ in range(400):
        vals = [rng.randint(0, rng.choice([1, 9, 90, 700])) for _ in range(rng.choice([1, 2, 3, 20, 21, 999]))]
        a = np.asarray(vals)
        s = length_stats(vals, 8, 77)
        assert (s["mean"], s["median"], s["p95"], s["min"], s["max"]) == (
            round(float(a.mean()), 2), float(np.median(a)), float(np.percentile(a, 95)), a.min(), a.max())
        counts, _ = np.histogram(a, bins=s["histogram"]["bin_edges"])
        assert s["histogram"]["counts"] == counts.tolist()
        assert s["over_context_fraction"] == round(float((a > 77).mean()), 4)


@pytest.mark.parametrize("n_total", [0, 3, 48, 277, 278, 5000])
def test_gallery_picks_are_random_sample_positions(n_total):
    pairs = [f"p{i}" for i in range(n_total)]
    want = random.Random(7).sample(pairs, min(48, n_total))
    assert {pairs[i] for i in gallery_picks(n_total, 48, 7)} == set(want)


def test_append_only_store_keeps_nothing_and_cuts_a_torn_tail(tmp_path):
    p = tmp_path / "d.partial.jsonl"
    p.write_bytes(b'{"key": [1]}\nnot json\n{"key": [2]}\n{"key": [3], "x"')
    store = ResumableJsonl(p, key=lambda r: tuple(r["key"]), keep_records=False)
    assert p.read_bytes().endswith(b'{"key": [2]}\n')  # the torn record is gone
    store.append({"key": [4]})
    store.close()
    assert store.records == {}
    got = [(off, rec["key"]) for off, rec in store.entries()]
    assert [k for _, k in got] == [[1], [2], [4]]
    with p.open("rb") as fh:
        for off, key in got:
            fh.seek(off)
            assert json.loads(fh.readline())["key"] == key


def _captions(root, n_slides, per_slide, text_chars=240):
    """Small caption files (the shape of tests/test_dataset.py's), one shared patch image."""
    feat = root / "features_x"
    caps, patches = feat / "captions_t", feat / "selection" / "patches"
    caps.mkdir(parents=True)
    one = root / "one.jpg"
    Image.new("RGB", (8, 8), (200, 100, 50)).save(one)
    files = []
    for s in range(n_slides):
        slide = f"S{s:04d}"
        (patches / slide).mkdir(parents=True)
        lines = []
        for i in range(per_slide):
            x, y = 64 * i, 64 * s
            (patches / slide / f"{x}_{y}.jpg").hardlink_to(one)
            text = " ".join(f"nuclei{(i * j) % 97} stroma." for j in range(text_chars // 16))
            lines.append(json.dumps({"slide_id": slide, "x": x, "y": y, "image": f"{slide}/{x}_{y}.jpg",
                                     "describe": text * 4, "revise": text * 3, "caption": text,
                                     "backend": "b", "model": "m", "status": "ok", "accepted": True,
                                     "reject_reasons": []}))
        f = caps / f"{slide}.jsonl"
        f.write_text("\n".join(lines) + "\n")
        files.append(f)
    return files, patches


# slides of 50 records: a warm-up first (first-use imports and caches), then 3 and 30
WARM_SMALL_LARGE = (30, 3, 30)


def _max_live_bytes(monkeypatch, owner, name: str, fn, *args, **kw) -> int:
    """The most memory allocated during ``fn(...)`` and still alive, sampled at the 32nd, 64th,
    128th, ... call of ``owner.name`` (a per-record step inside the build's writing loop). pathlib's own
    allocations are left out: it interns path parts in a process-wide table, and a resize of
    that table (whenever it fills up, whatever else the process holds) is not the build's."""
    real = getattr(owner, name)
    calls, most = [0], [0]

    def spy(*a, **k):
        calls[0] += 1
        if calls[0] >= 32 and calls[0] & (calls[0] - 1) == 0:
            snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, pathlib.__file__)])
            most[0] = max(most[0], sum(st.size for st in snap.statistics("filename")))
        return real(*a, **k)

    monkeypatch.setattr(owner, name, spy)
    tracemalloc.start()
    try:
        fn(*args, **kw)
    finally:
        tracemalloc.stop()
        monkeypatch.setattr(owner, name, real)
    assert calls[0] >= 32
    return most[0]


def test_dataset_memory_does_not_grow_with_the_records(tmp_path, monkeypatch):
    """10x the records: what the build holds while it writes stays (the in-memory builder held
    ~5 KB more per record here: ~7 MB for the 1,350 extra)."""
    counter = token_counter("ViT-B-16")  # made (open_clip imported, BPE loaded) outside the measurement
    monkeypatch.setattr("pathgen.dataset.card.token_counter", lambda arch: counter)
    live = []
    for run, n_slides in enumerate(WARM_SMALL_LARGE):
        files, _ = _captions(tmp_path / str(run), n_slides, 50)
        cfg = DatasetConfig(shard_size=20, gallery_size=4)
        live.append(_max_live_bytes(monkeypatch, CardStats, "add_sample",
                                    build_dataset, files, tmp_path / f"out{run}", cfg))
    assert live[2] - live[1] < 1_000_000, live


def test_instruct_memory_does_not_grow_with_the_records(tmp_path, monkeypatch):
    """The in-memory builder held ~9 KB more per record here (~12 MB for the 1,350 extra)."""
    monkeypatch.setattr(ib, "PARQUET_ROWS", 200)  # the one buffer: a Parquet row group
    live = []
    for run, n_slides in enumerate(WARM_SMALL_LARGE):
        files, patches = _captions(tmp_path / str(run), n_slides, 50)
        live.append(_max_live_bytes(monkeypatch, ib, "render_source", ib.build_instruct, files,
                                    tmp_path / f"out{run}", InstructConfig(), patches_root=patches))
    # what grows: the compact index (a few integers per record) and the card's counters
    assert live[2] - live[1] < 1_000_000, live


def test_parquet_in_row_groups_holds_the_same_rows(tmp_path, monkeypatch):
    files, patches = _captions(tmp_path, 3, 7)
    one = ib.build_instruct(files, tmp_path / "one", InstructConfig(), patches_root=patches)
    monkeypatch.setattr(ib, "PARQUET_ROWS", 5)
    many = ib.build_instruct(files, tmp_path / "many", InstructConfig(), patches_root=patches)
    assert one == many
    a, b = (pq.ParquetFile(tmp_path / d / "pathgen_instruct.parquet") for d in ("one", "many"))
    assert a.metadata.num_row_groups == 1 and b.metadata.num_row_groups == -(-one["n_items"] // 5)
    assert a.read().equals(b.read())


def test_instruct_resume_after_a_kill_with_a_record_given_twice(tmp_path, monkeypatch):
    files, patches = _captions(tmp_path, 3, 4)
    files.append(files[1].with_name("again.jsonl"))
    files[-1].write_text(files[1].read_text().splitlines()[2] + "\n")  # S0001 (128, 64) twice
    real, calls = ib.draft_items, {"n": 0}

    def flaky(rec, cfg, chat):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt("simulated kill")
        return real(rec, cfg, chat)

    monkeypatch.setattr(ib, "draft_items", flaky)
    with pytest.raises(KeyboardInterrupt):
        ib.build_instruct(files, tmp_path / "o", InstructConfig(), patches_root=patches)
    monkeypatch.setattr(ib, "draft_items", real)
    resumed = ib.build_instruct(files, tmp_path / "o", InstructConfig(), patches_root=patches)
    fresh = ib.build_instruct(files, tmp_path / "f", InstructConfig(), patches_root=patches)
    assert resumed == fresh and resumed["n_source_patches"] == 13
    assert resumed["rejects_by_reason"].get("duplicate item", 0) > 0  # the second copy's items
    for name in ("pathgen_instruct.json", "rejects.jsonl"):
        assert (tmp_path / "o" / name).read_bytes() == (tmp_path / "f" / name).read_bytes()
