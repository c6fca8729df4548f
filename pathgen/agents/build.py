"""`build-data`: (patch, teacher description) pairs -> describe and revise SFT data (LLaVA
conversations), train/val split by slide, + a card saying where everything came from.

describe: human = the describe prompt the captioning pipeline sends for this patch, gpt = the
teacher description. revise: human = the revise prompt around a corrupted description (one
controlled edit), gpt = the original description.
"""

from __future__ import annotations

import collections
import logging
from pathlib import Path
from typing import Callable

from ..atomic import write_json
from ..config.agents import AgentsDataConfig
from .corrupt import corrupt, record_rng
from .files import agents_data_files
from .llava import conversation
from .split import split_slides
from .teacher import TeacherPair, describe_prompt

log = logging.getLogger(__name__)


def _image_ref(pair: TeacherPair, image_folder: Path) -> str:
    """``image`` relative to the data's image folder (absolute when it lies outside it)."""
    try:
        return pair.path.resolve().relative_to(image_folder).as_posix()
    except ValueError:
        return str(pair.path.resolve())


def _revise_record(pair: TeacherPair, image: str, split: str, dcfg: AgentsDataConfig, templates,
                   chat: Callable[[str], str] | None) -> dict | None:
    rng = record_rng(dcfg.seed, pair.id)
    if dcfg.corrupter == "llm":
        from .corrupt_llm import corrupt_with_llm

        edit = corrupt_with_llm(pair.description, list(dcfg.edit_kinds), rng, chat)
    else:
        edit = corrupt(pair.description, list(dcfg.edit_kinds), rng)
    if edit is None:
        return None
    prompt = templates.render("revise", description=edit.text)
    return conversation(f"{pair.id}_revise", image, prompt, pair.description,
                        slide_id=pair.slide_id, split=split, agent="revise", source=pair.source,
                        corrupted=edit.text, edit=edit.meta())


def build_data(pairs: list[TeacherPair], out_dir: str | Path, dcfg: AgentsDataConfig, templates,
               image_folder: str | Path, chat: Callable[[str], str] | None = None,
               teacher: str = "", skipped: dict | None = None) -> dict:
    """Write ``<agent>_<split>.json`` (LLaVA lists) and the card into ``out_dir``; returns the
    card. ``chat`` is the text chat of the llm corrupter (unused by the rule-based one)."""
    if not pairs:
        raise ValueError("no (patch, teacher description) pairs to build agent data from: "
                         "the teacher inputs held no usable description (see the skipped counts "
                         f"{skipped or {}}; lower agents.data.min_words or check the inputs)")
    if dcfg.corrupter == "llm" and chat is None:
        raise ValueError("agents.data.corrupter 'llm' needs a text chat (an openai or "
                         "transformers captioning backend)")
    splits = split_slides([p.slide_id for p in pairs], dcfg.val_fraction, dcfg.seed)
    data: dict[str, list[dict]] = collections.defaultdict(list)
    edits: collections.Counter = collections.Counter()
    folder = Path(image_folder).resolve()
    for p in sorted(pairs, key=lambda p: p.id):
        split, image = splits[p.slide_id], _image_ref(p, folder)
        data[f"describe_{split}"].append(conversation(
            p.id, image, describe_prompt(templates, p.path, p.mpp), p.description,
            slide_id=p.slide_id, split=split, agent="describe", source=p.source))
        rec = _revise_record(p, image, split, dcfg, templates, chat)
        if rec is None:
            edits["not_corruptible"] += 1
            continue
        data[f"revise_{split}"].append(rec)
        edits[f"{rec['edit']['kind']} ({rec['edit']['corrupter']})"] += 1
    files = agents_data_files(Path(out_dir))
    for key, path in files.items():
        if key != "card":
            write_json(path, data.get(key, []))
    card = {"n": {k: len(data.get(k, [])) for k in files if k != "card"},
            "slides": {s: sorted(x for x, v in splits.items() if v == s) for s in ("train", "val")},
            "image_folder": str(folder), "teacher": teacher,
            "corrupter": dcfg.corrupter, "edits": dict(sorted(edits.items())),
            "skipped": skipped or {}, "prompt_version": templates.version,
            "prompt_hash": templates.hash(), "settings": dcfg.model_dump(mode="json")}
    write_json(files["card"], card)
    log.info("agent data: %s -> %s", card["n"], out_dir)
    return card
