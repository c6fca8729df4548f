"""The instruction stage: captions (per-slide JSONL) -> PathGen-Instruct JSON + Parquet + images.

Per caption record the generated drafts are appended to a resumable JSONL, so a killed run
resumes without losing or duplicating work; rendering (option shuffling with balanced answer
positions), validation, de-duplication and the final files happen at the end, atomically.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Callable, Iterable

from PIL import Image

from ..atomic import atomic_path, write_json, write_text
from ..config.instruct import InstructConfig
from ..jsonl_store import ResumableJsonl, read_jsonl, write_jsonl
from . import llm, offline
from .files import instruct_drafts, instruct_files
from .records import close_record, dedupe_key, image_name, open_record, validate_record

log = logging.getLogger(__name__)
ChatFn = Callable[[str], str]


def _source_key(rec: dict) -> tuple:
    return (rec["slide_id"], int(rec["x"]), int(rec["y"]))


def load_captions(caption_files: Iterable[str | Path]) -> list[dict]:
    """Accepted caption records from per-slide caption JSONLs, in a stable order."""
    out = []
    for path in caption_files:
        for rec in read_jsonl(path, fix="; caption files come from `pathgen caption` (re-run it)"):
            if rec.get("status", "ok") == "ok" and rec.get("accepted", True) and rec.get("caption"):
                rec["_source_file"] = str(path)
                out.append(rec)
    out.sort(key=_source_key)
    return out


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


def _balanced_positions(n: int, seed: int) -> list[int]:
    pos = [i % 4 for i in range(n)]
    random.Random(seed).shuffle(pos)
    return pos


def render(sources: list[dict], drafted: dict[tuple, dict], cfg: InstructConfig):
    """Turn drafts into records; returns (records, rejects)."""
    n_close = sum(1 for s in sources for d in drafted[_source_key(s)]["drafts"] if d["type"] == "CLOSE")
    positions = iter(_balanced_positions(n_close, cfg.seed))
    records, rejects, seen = [], [], set()
    for src in sources:
        entry = drafted[_source_key(src)]
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


def card(records: list[dict], rejects: list[dict], n_sources: int, cfg: InstructConfig,
         chat_id: str | None = None) -> dict:
    close = [r for r in records if r["type"] == "CLOSE"]
    llm_id = f"llm {chat_id} (prompts {llm.prompts_hash()})" if chat_id else f"llm (prompts {llm.prompts_hash()})"
    letters = collections.Counter(r["conversations"][1]["value"] for r in close)
    turns = collections.Counter(len(r["conversations"]) // 2 for r in records if r["type"] == "OPEN")
    return {
        "generator": offline.GENERATOR_ID if cfg.generator == "offline" else llm_id,
        "generator_note": ("keyword-grounded templates over the captions; not a language model"
                           if cfg.generator == "offline" else "language model: the summarize agent"),
        "n_source_patches": n_sources,
        "n_items": len(records),
        "n_close": len(close),
        "n_open": len(records) - len(close),
        "answer_letter_counts": dict(sorted(letters.items())),
        "open_turns_histogram": {str(k): v for k, v in sorted(turns.items())},
        "n_rejected": len(rejects),
        "rejects_by_reason": dict(collections.Counter(r["reason"] for r in rejects)),
        "n_slides": len({r["wsi_id"] for r in records}),
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
    sources = load_captions(caption_files)
    chat_id = getattr(chat, "id", None) if cfg.generator == "llm" else None
    # The drafts file is named by the settings that shape drafts (the chat model too), so a
    # changed setting never resumes from stale drafts.
    tag = hashlib.sha256((cfg.model_dump_json() + llm.prompts_hash() + (chat_id or "")).encode()).hexdigest()[:10]
    files = instruct_files(out_dir)
    drafts_path = instruct_drafts(out_dir, tag)
    store = ResumableJsonl(drafts_path, key=lambda r: tuple(r["key"]))
    todo = [s for s in sources if _source_key(s) not in store]
    log.info("instruct: %d caption records, %d already drafted", len(sources), len(sources) - len(todo))
    try:
        for src in todo:
            store.append(draft_items(src, cfg, chat))
    finally:
        store.close()
    drafted = store.records
    records, rejects = render(sources, drafted, cfg)
    root = Path(patches_root) if patches_root is not None else None
    by_key = {_source_key(s): s for s in sources}
    for key in sorted({(r["wsi_id"], int(r["position"][0]), int(r["position"][1])) for r in records}):
        _copy_image(by_key[key], root, files["images"] / image_name(*key), cfg.jpeg_quality)
    write_json(files["json"], records)
    _write_parquet(files["parquet"], records)
    write_jsonl(files["rejects"], rejects)
    c = card(records, rejects, len(sources), cfg, chat_id)
    write_json(files["card"], c)
    write_text(files["card_md"], _card_markdown(c))
    # Drafts are only a resume aid; the finished set supersedes them.
    drafts_path.unlink(missing_ok=True)
    return c


def _write_parquet(path: Path, records: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    turn = pa.struct([("from", pa.string()), ("value", pa.string())])
    schema = pa.schema([("id", pa.string()), ("image", pa.string()), ("conversations", pa.list_(turn)),
                        ("type", pa.string()), ("wsi_id", pa.string()), ("file_id", pa.string()),
                        ("position", pa.list_(pa.string()))])
    table = pa.Table.from_pylist(records, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
