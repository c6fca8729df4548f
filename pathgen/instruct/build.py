"""The instruction stage: captions (per-slide JSONL) -> PathGen-Instruct JSON + Parquet + images.

Per caption record the generated drafts are appended to a resumable JSONL, so a killed run
resumes without losing or duplicating work; rendering (option shuffling with balanced answer
positions), validation, de-duplication and the final files happen at the end, atomically.

The build streams. The caption records are kept as a compact sorted index (slide, x, y and
where the line is; the drafts file likewise) and read back one line at a time in that order,
and every output is written as it goes (the JSON list item by item, the Parquet file in row
groups of ``PARQUET_ROWS``), so memory does not grow with the records' text.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import random
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image

from ..atomic import atomic_path, json_array_writer, write_json, write_text
from ..config.instruct import InstructConfig
from ..jsonl_store import ResumableJsonl, jsonl_writer, read_jsonl_entries
from . import llm, offline
from .files import instruct_drafts, instruct_files
from .records import close_record, dedupe_key, image_name, open_record, validate_record

log = logging.getLogger(__name__)
ChatFn = Callable[[str], str]
# Rows per Parquet row group: one group (the whole file, byte-identical to writing all rows at
# once) up to this many items, a constant memory above it.
PARQUET_ROWS = 16_384
_CAPTIONS_FIX = "; caption files come from `pathgen caption` (re-run it)"


def _source_key(rec: dict) -> tuple:
    return (rec["slide_id"], int(rec["x"]), int(rec["y"]))


def _usable(rec: dict) -> bool:
    return bool(rec.get("status", "ok") == "ok" and rec.get("accepted", True) and rec.get("caption"))


@dataclass
class Sources:
    """The accepted caption records as a compact index, sorted by (slide, x, y) (stable: ties
    keep file and line order): per record its slide rank, x, y, file and byte offset."""
    files: list[str]
    slides: list            # slide ids, sorted (index = rank)
    rank: np.ndarray        # int32
    x: np.ndarray           # int64
    y: np.ndarray           # int64
    file: np.ndarray        # int32
    offset: np.ndarray      # int64

    @classmethod
    def scan(cls, caption_files: Iterable[str | Path]) -> "Sources":
        files = [str(p) for p in caption_files]
        ids: dict = {}  # slide id -> first-seen number
        sid, xs, ys, fi, off = array("i"), array("q"), array("q"), array("i"), array("q")
        for f, path in enumerate(files):
            for _, offset, rec in read_jsonl_entries(path, fix=_CAPTIONS_FIX):
                if _usable(rec):
                    slide, x, y = _source_key(rec)
                    sid.append(ids.setdefault(slide, len(ids)))
                    xs.append(x)
                    ys.append(y)
                    fi.append(f)
                    off.append(offset)
        slides = sorted(ids)
        rank_of = {v: r for r, v in enumerate(slides)}
        to_rank = np.asarray([rank_of[v] for v in ids], np.int32)
        rank = to_rank[np.frombuffer(sid, np.int32)] if len(sid) else np.zeros(0, np.int32)
        x, y = np.frombuffer(xs, np.int64), np.frombuffer(ys, np.int64)
        order = np.lexsort((np.arange(len(rank)), y, x, rank))
        return cls(files, slides, rank[order], x[order], y[order],
                   np.frombuffer(fi, np.int32)[order], np.frombuffer(off, np.int64)[order])

    def __len__(self) -> int:
        return len(self.offset)

    def records(self, which: np.ndarray | None = None) -> Iterator[dict]:
        """The records (all, or the positions in ``which``) in sorted order, one at a time."""
        idx = range(len(self)) if which is None else which
        fh, cur = None, -1
        try:
            for i in idx:
                f = int(self.file[i])
                if f != cur:
                    if fh is not None:
                        fh.close()
                    fh, cur = open(self.files[f], "rb"), f
                fh.seek(int(self.offset[i]))
                rec = json.loads(fh.readline())
                rec["_source_file"] = self.files[f]
                yield rec
        finally:
            if fh is not None:
                fh.close()


def _draft_offsets(store: ResumableJsonl, src: Sources) -> tuple[np.ndarray, np.ndarray]:
    """For every source (sorted order): the byte offset of its drafts in the store (-1: not
    drafted; the last record of a key wins) and its number of CLOSE drafts. Matched on numpy
    arrays (a few integers per record), never on Python objects per record."""
    rank_of = {v: r for r, v in enumerate(src.slides)}
    rk, xs, ys, off, ncl = array("i"), array("q"), array("q"), array("q"), array("i")
    for offset, rec in store.entries():  # file order: a later record of a key wins
        key = store.key(rec)
        try:
            r = rank_of.get(key[0])
        except TypeError:  # an unhashable slide id in a hand-edited line
            r = None
        if r is None:
            continue  # a slide no longer among the captions
        rk.append(r)
        xs.append(int(key[1]))
        ys.append(int(key[2]))
        off.append(offset)
        ncl.append(sum(1 for d in rec["drafts"] if d["type"] == "CLOSE"))
    ns, nd = len(src), len(off)
    r = np.concatenate([src.rank, np.frombuffer(rk, np.int32)]) if nd else src.rank
    x = np.concatenate([src.x, np.frombuffer(xs, np.int64)]) if nd else src.x
    y = np.concatenate([src.y, np.frombuffer(ys, np.int64)]) if nd else src.y
    order = np.lexsort((y, x, r))
    r, x, y = r[order], x[order], y[order]
    new = np.ones(len(order), bool)  # where a new (slide, x, y) starts
    new[1:] = (r[1:] != r[:-1]) | (x[1:] != x[:-1]) | (y[1:] != y[:-1])
    del r, x, y
    group = np.empty(len(order), np.int64)
    group[order] = np.cumsum(new) - 1
    del order, new
    last = np.full(int(group.max()) + 1 if len(group) else 0, -1, np.int64)
    g_d = group[ns:]
    o = np.lexsort((np.arange(nd), g_d))  # drafts by key, then file order
    end = np.ones(nd, bool)
    end[:-1] = g_d[o][1:] != g_d[o][:-1]
    last[g_d[o][end]] = o[end]  # the last (in file order) of each key
    j = last[group[:ns]]
    d_off, d_ncl = np.frombuffer(off, np.int64), np.frombuffer(ncl, np.int32)
    has = j >= 0
    out_off = np.full(ns, -1, np.int64)
    out_ncl = np.zeros(ns, np.int32)
    out_off[has], out_ncl[has] = d_off[j[has]], d_ncl[j[has]]
    return out_off, out_ncl


def draft_items(rec: dict, cfg: InstructConfig, chat: ChatFn | None) -> dict:
    """Drafts (not yet rendered) and rejects for one caption record."""
    caption = rec["caption"]
    drafts, rejects = [], []
    if cfg.generator == "offline":
        for q in offline.close_candidates(caption)[: cfg.close_per_patch]:
            drafts.append({"type": "CLOSE", "q": q, "verified": "by-construction"})
        if cfg.open_per_patch:
            turns = offline.open_turns(caption, cfg.max_turns)
            if turns:
                drafts.append({"type": "OPEN", "turns": turns})
            else:
                rejects.append({"type": "OPEN", "reason": "caption has no sentences"})
    else:
        if chat is None:
            raise ValueError("instruct.generator 'llm' needs a text chat (the summarize agent, "
                             "captioning.agents.summarize)")
        for _ in range(cfg.close_per_patch):
            try:
                q = llm.llm_close(caption, chat)
            except (ValueError, json.JSONDecodeError) as err:
                rejects.append({"type": "CLOSE", "reason": f"malformed reply: {err}"})
                continue
            if cfg.verify_with_llm and not llm.llm_verify(caption, q["correct"], chat):
                rejects.append({"type": "CLOSE", "reason": "correct option not entailed by caption", "item": q})
                continue
            drafts.append({"type": "CLOSE", "q": q, "verified": "llm" if cfg.verify_with_llm else "unverified"})
        if cfg.open_per_patch:
            try:
                drafts.append({"type": "OPEN", "turns": llm.llm_open(caption, chat, cfg.max_turns)})
            except (ValueError, json.JSONDecodeError) as err:
                rejects.append({"type": "OPEN", "reason": f"malformed reply: {err}"})
    return {"key": list(_source_key(rec)), "drafts": drafts, "rejects": rejects}


def _balanced_positions(n: int, seed: int) -> bytearray:
    """Answer positions 0-3 of the n CLOSE items, balanced and shuffled (one byte each)."""
    pos = bytearray(i % 4 for i in range(n))
    random.Random(seed).shuffle(pos)
    return pos


def render_source(src: dict, entry: dict, positions: Iterator[int], seen: set, cfg: InstructConfig):
    """One caption record's drafts as records; returns (records, rejects). ``positions``: the
    answer positions of the CLOSE items, consumed in order; ``seen``: the de-duplication keys
    of the items of the same image so far (an item's key holds its image, so keys of other
    images never meet)."""
    records, rejects = [], []
    for r in entry["rejects"]:
        rejects.append({"wsi_id": src["slide_id"], "x": src["x"], "y": src["y"], **r})
    for d in entry["drafts"]:
        if d["type"] == "CLOSE":
            rec, correct = close_record(src, d["q"], next(positions), cfg.seed), d["q"]["correct"]
        else:
            rec, correct = open_record(src, [tuple(t) for t in d["turns"]]), None
        problems = validate_record(rec, correct)
        key = dedupe_key(rec) if not problems else None
        if key is not None and key in seen:
            problems = ["duplicate item"]
        if problems:
            rejects.append({"wsi_id": src["slide_id"], "x": src["x"], "y": src["y"],
                            "type": d["type"], "reason": "; ".join(problems)})
            continue
        seen.add(key)
        records.append(rec)
    return records, rejects


def _copy_image(src: dict, patches_root: Path | None, dest: Path, quality: int) -> None:
    img_path = Path(src.get("image", ""))
    if not img_path.is_absolute():
        base = patches_root if patches_root is not None else Path(src["_source_file"]).parent
        img_path = base / img_path
    if not img_path.exists():
        raise FileNotFoundError(f"patch image {img_path} (from {src['_source_file']}) is missing; "
                                "re-run the selection stage for that slide")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp, Image.open(img_path) as im:
        im.convert("RGB").save(tmp, format="JPEG", quality=quality)


class CardStats:
    """The instruct card's numbers, counted as records and rejects are written."""

    def __init__(self):
        self.n_items = self.n_close = self.n_rejected = 0
        self.letters: collections.Counter = collections.Counter()
        self.turns: collections.Counter = collections.Counter()
        self.reasons: collections.Counter = collections.Counter()
        self.slides: set = set()

    def record(self, r: dict) -> None:
        self.n_items += 1
        self.slides.add(r["wsi_id"])
        if r["type"] == "CLOSE":
            self.n_close += 1
            self.letters[r["conversations"][1]["value"]] += 1
        elif r["type"] == "OPEN":
            self.turns[len(r["conversations"]) // 2] += 1

    def reject(self, r: dict) -> None:
        self.n_rejected += 1
        self.reasons[r["reason"]] += 1

    def card(self, n_sources: int, cfg: InstructConfig, chat_id: str | None = None) -> dict:
        llm_id = f"llm {chat_id} (prompts {llm.prompts_hash()})" if chat_id else f"llm (prompts {llm.prompts_hash()})"
        return {
            "generator": offline.GENERATOR_ID if cfg.generator == "offline" else llm_id,
            "generator_note": ("keyword-grounded templates over the captions; not a language model"
                               if cfg.generator == "offline" else "language model: the summarize agent"),
            "n_source_patches": n_sources,
            "n_items": self.n_items,
            "n_close": self.n_close,
            "n_open": self.n_items - self.n_close,
            "answer_letter_counts": dict(sorted(self.letters.items())),
            "open_turns_histogram": {str(k): v for k, v in sorted(self.turns.items())},
            "n_rejected": self.n_rejected,
            "rejects_by_reason": dict(self.reasons),
            "n_slides": len(self.slides),
        }


def _card_markdown(c: dict) -> str:
    lines = ["# PathGen-Instruct-style instruction data", "",
             f"Generator: {c['generator']} ({c['generator_note']}).", "",
             "| statistic | value |", "|---|---|"]
    for k in ("n_source_patches", "n_slides", "n_items", "n_close", "n_open", "n_rejected"):
        lines.append(f"| {k} | {c[k]} |")
    lines += ["", f"CLOSE answer letters: {c['answer_letter_counts']}",
              f"OPEN turns per item: {c['open_turns_histogram']}",
              f"Rejects by reason: {c['rejects_by_reason']}", ""]
    return "\n".join(lines)


def build_instruct(caption_files: Iterable[str | Path], out_dir: str | Path, cfg: InstructConfig,
                   patches_root: str | Path | None = None, chat: ChatFn | None = None) -> dict:
    """Build the instruction set in ``out_dir``; returns the dataset card. ``chat``: the
    llm generator's text chat (a :class:`~pathgen.instruct.chat.TextChat` names its model in
    the card and the drafts file)."""
    out_dir = Path(out_dir)
    sources = Sources.scan(caption_files)
    chat_id = getattr(chat, "id", None) if cfg.generator == "llm" else None
    # The drafts file is named by the settings that shape drafts (the chat model too), so a
    # changed setting never resumes from stale drafts.
    tag = hashlib.sha256((cfg.model_dump_json() + llm.prompts_hash() + (chat_id or "")).encode()).hexdigest()[:10]
    files = instruct_files(out_dir)
    drafts_path = instruct_drafts(out_dir, tag)
    store = ResumableJsonl(drafts_path, key=lambda r: tuple(r["key"]), keep_records=False)
    offsets, _ = _draft_offsets(store, sources)
    todo = np.flatnonzero(offsets < 0)
    log.info("instruct: %d caption records, %d already drafted", len(sources), len(sources) - len(todo))
    try:
        for src in sources.records(todo):
            store.append(draft_items(src, cfg, chat))
    finally:
        store.close()
    offsets, n_close = _draft_offsets(store, sources)
    positions = iter(_balanced_positions(int(n_close.sum()), cfg.seed))
    del n_close
    root = Path(patches_root) if patches_root is not None else None
    stats = CardStats()
    with contextlib.ExitStack() as stack:
        add_json = stack.enter_context(json_array_writer(files["json"], indent=2))
        add_row = stack.enter_context(_parquet_writer(files["parquet"]))
        add_reject = stack.enter_context(jsonl_writer(files["rejects"]))
        drafts = stack.enter_context(open(drafts_path, "rb")) if len(sources) else None
        key, last, wrote, seen = None, None, False, set()
        for src, offset in zip(sources.records(), offsets):
            if _source_key(src) != key:  # a new image: the previous one's file, if it has items
                if wrote:
                    _copy_image(last, root, files["images"] / image_name(*key), cfg.jpeg_quality)
                key, wrote, seen = _source_key(src), False, set()
            last = src  # the image of a record given twice comes from its last copy
            drafts.seek(int(offset))
            records, rejects = render_source(src, json.loads(drafts.readline()), positions, seen, cfg)
            for r in rejects:
                add_reject(r)
                stats.reject(r)
            for r in records:
                add_json(r)
                add_row(r)
                stats.record(r)
                wrote = True
        if wrote:
            _copy_image(last, root, files["images"] / image_name(*key), cfg.jpeg_quality)
    c = stats.card(len(sources), cfg, chat_id)
    write_json(files["card"], c)
    write_text(files["card_md"], _card_markdown(c))
    # Drafts are only a resume aid; the finished set supersedes them.
    drafts_path.unlink(missing_ok=True)
    return c


def _parquet_schema():
    import pyarrow as pa

    turn = pa.struct([("from", pa.string()), ("value", pa.string())])
    return pa.schema([("id", pa.string()), ("image", pa.string()), ("conversations", pa.list_(turn)),
                      ("type", pa.string()), ("wsi_id", pa.string()), ("file_id", pa.string()),
                      ("position", pa.list_(pa.string()))])


@contextlib.contextmanager
def _parquet_writer(path: Path) -> Iterator[Callable[[dict], None]]:
    """Yields ``add(record)``; writes row groups of ``PARQUET_ROWS`` records, atomically. Up
    to that many records the file is the one ``pq.write_table`` writes for all of them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema()
    buf: list[dict] = []
    written = 0
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:

        def flush() -> None:
            nonlocal written
            writer.write_table(pa.Table.from_pylist(buf, schema=schema))
            written += len(buf)
            buf.clear()

        def add(rec: dict) -> None:
            buf.append(rec)
            if len(buf) >= PARQUET_ROWS:
                flush()

        yield add
        if buf or not written:  # an empty set: one empty table, as pq.write_table writes it
            flush()
