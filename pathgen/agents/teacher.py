"""(patch, teacher description) pairs: read from caption records / descriptions files, or
written anew by a configured captioning backend.

Accepted inputs (one record per line for .jsonl, or a JSON list):
  * pathgen caption records (pathgen/captioning/pipeline.py ``base_record``): ``slide_id``,
    ``x``, ``y``, ``image`` (relative to the selection's patches folder), ``mpp``, ``status``
    and the agents' texts ``describe`` / ``revise``;
  * plain descriptions: ``image`` + ``description`` (+ optional ``id``, ``slide_id``, ``mpp``);
  * LLaVA conversations: ``image`` + ``conversations``; the first ``gpt`` turn is the text.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..config.captioning import CaptioningConfig
from ..jsonl_store import read_jsonl

log = logging.getLogger(__name__)


class TeacherError(ValueError):
    """A teacher input cannot be used (the message names the file and the fix)."""


@dataclass(frozen=True)
class TeacherPair:
    id: str
    slide_id: str
    image: str              # as written by the source (LLaVA ``image``, relative to image_root)
    path: Path              # the resolved image file
    description: str
    mpp: float | None       # µm per pixel of the image file, when known
    source: str             # where the text came from (file, or backend:model)


def _records(path: Path) -> list[dict]:
    if not path.is_file():
        raise TeacherError(f"teacher file {path} does not exist")
    if path.suffix == ".jsonl":
        return list(read_jsonl(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TeacherError(f"teacher file {path} is neither JSON Lines (.jsonl) nor a JSON "
                           f"list: {err}") from None
    if not isinstance(data, list):
        raise TeacherError(f"teacher file {path} must hold a JSON list of records")
    return data


def _text_of(rec: dict, field: str) -> str | None:
    """The teacher text of one record, or None when the record has none / failed."""
    if "conversations" in rec:
        return next((t.get("value") for t in rec["conversations"] if t.get("from") == "gpt"), None)
    if "describe" in rec or "revise" in rec:  # a caption record
        return rec.get(field) if rec.get("status", "ok") == "ok" else None
    return rec.get("description")


def _identity(rec: dict, image: str) -> tuple[str, str]:
    stem = Path(image).stem
    slide = rec.get("slide_id") or rec.get("wsi_id") or Path(image).parent.name or stem
    if "x" in rec and "y" in rec:
        return f"{slide}_{int(rec['x'])}_{int(rec['y'])}", str(slide)
    return str(rec.get("id") or f"{slide}_{stem}"), str(slide)


def pairs_from_files(files: Iterable[str | Path], image_root: str | Path | None,
                     field: str = "describe", min_words: int = 1) -> tuple[list[TeacherPair], dict]:
    """Pairs from teacher files; ``image_root``: what relative ``image`` paths are relative
    to (None = the teacher file's folder). Returns (pairs, counts of skipped records)."""
    pairs, seen = [], set()
    skipped = {"no_text": 0, "too_short": 0, "duplicate": 0, "rejected": 0}
    for f in map(Path, files):
        root = Path(image_root) if image_root is not None else f.parent
        for i, rec in enumerate(_records(f), start=1):
            if not isinstance(rec, dict) or not rec.get("image"):
                raise TeacherError(f"{f} record {i} has no 'image' (the patch image path); "
                                   "expected caption records, {image, description} or LLaVA "
                                   "conversations")
            if rec.get("accepted") is False:  # the caption filters rejected it (refusal, ...)
                skipped["rejected"] += 1
                continue
            text = " ".join((_text_of(rec, field) or "").split())
            if not text:
                skipped["no_text"] += 1
                continue
            if len(text.split()) < min_words:
                skipped["too_short"] += 1
                continue
            image = str(rec["image"])
            path = root / image
            if not path.is_file():
                raise TeacherError(f"{f} record {i}: patch image {path} is missing; pass the "
                                   "folder the records' 'image' paths are relative to "
                                   "(--patches-root, e.g. <features>/selection/patches)")
            pid, slide = _identity(rec, image)
            if pid in seen:  # the same patch in two inputs (e.g. a run's .partial companion)
                skipped["duplicate"] += 1
                continue
            seen.add(pid)
            mpp = rec.get("mpp")
            pairs.append(TeacherPair(pid, slide, image, path, text,
                                     float(mpp) if mpp else None, str(f)))
    return pairs, skipped


def describe_prompt(templates, image_path: Path, mpp: float | None) -> str:
    """The describe agent's prompt for one patch, as the captioning pipeline renders it (field
    of view = mpp x image width), so a trained model sees its inference prompt."""
    from PIL import Image

    field_um = None
    if mpp:
        with Image.open(image_path) as im:
            field_um = mpp * im.width
    fu = f"{field_um:.0f}" if field_um else "an unknown number of"
    return templates.render("describe", field_um=fu, mpp=f"{mpp:.3g}" if mpp else "unknown")


async def _describe_all(items, backend, templates, concurrency: int) -> list[tuple]:
    from ..captioning.items import AgentError

    sem = asyncio.Semaphore(concurrency)

    async def one(item):
        async with sem:
            prompt = describe_prompt(templates, item.path, item.mpp)
            try:
                return item, (await backend.describe(item, prompt)).text
            except (AgentError, OSError) as err:
                log.warning("teacher describe failed for %s (%s): skipped", item.image, err)
                return item, None

    try:
        return await asyncio.gather(*(one(it) for it in items))
    finally:
        await backend.aclose()


def pairs_from_backend(selections: Iterable[str | Path], patches_root: str | Path, c: CaptioningConfig,
                       mpp: float | None, min_words: int = 1) -> tuple[list[TeacherPair], dict]:
    """The captioning backend of ``c`` (the captioning section) describes the patches of
    selection CSVs (``mpp``: µm/px of a patch at its size_px, tiling's target); a failed or
    too short reply is skipped and counted."""
    from ..captioning.backends import make_backend
    from ..captioning.clean import clean_model_text
    from ..captioning.items import read_selection
    from ..captioning.prompts import load_templates

    items = [it for s in selections for it in read_selection(s, patches_root, mpp)]
    backend = make_backend(c)
    templates = load_templates(c.prompt_version, c.prompts_dir)
    results = asyncio.run(_describe_all(items, backend, templates, c.concurrency))
    source = f"backend:{c.backend}:{c.model_id()}"
    pairs, skipped = [], {"no_text": 0, "too_short": 0}
    for item, text in results:
        # the captions' own cleaning (reasoning blocks, preambles, markdown, lists): the agents
        # learn the plain prose the caption stage keeps
        text = " ".join(clean_model_text(text or "").split())
        if not text:
            skipped["no_text"] += 1
        elif len(text.split()) < min_words:
            skipped["too_short"] += 1
        else:
            pairs.append(TeacherPair(f"{item.slide_id}_{item.x}_{item.y}", item.slide_id,
                                     item.image, item.path, text, item.mpp, source))
    return pairs, skipped
