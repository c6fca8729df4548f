"""PathGen-Instruct record shape (LLaVA conversations) and its validation.

Record keys follow the PathGen-Instruct release: id, image ("<wsi_id>/<x>_<y>.jpg"),
conversations ([{"from": "human"|"gpt", "value": ...}], "<image>" in the first human turn),
type (CLOSE|OPEN), wsi_id, file_id, position (["x", "y"] as strings).
"""

from __future__ import annotations

import random
import re

from .files import instruct_image

LETTERS = "ABCD"
_OPTION_RE = re.compile(r"^([A-D])\. (.+)$", re.M)
MC_SUFFIX = "Answer with the option's letter from the given choices directly."


def image_name(wsi_id: str, x: int, y: int) -> str:
    return instruct_image(wsi_id, x, y)


def _base(wsi_id: str, x: int, y: int, file_id: str | None, kind: str, suffix: str) -> dict:
    return {"id": f"{wsi_id}_{x}_{y}_{suffix}", "image": image_name(wsi_id, x, y),
            "conversations": [], "type": kind, "wsi_id": wsi_id, "file_id": file_id or "",
            "position": [str(x), str(y)]}


def close_record(src: dict, q: dict, answer_pos: int, seed: int) -> dict:
    """Render a CLOSE item with the correct option placed at ``answer_pos`` (0–3)."""
    rng = random.Random(f"{seed}:{src['slide_id']}:{src['x']}:{src['y']}:{q['question']}")
    distractors = list(q["distractors"])
    rng.shuffle(distractors)
    options = distractors[:answer_pos] + [q["correct"]] + distractors[answer_pos:]
    rec = _base(src["slide_id"], src["x"], src["y"], src.get("file_id"), "CLOSE", f"close_{q['group']}")
    body = "\n".join(f"{LETTERS[i]}. {opt}" for i, opt in enumerate(options))
    rec["conversations"] = [
        {"from": "human", "value": f"<image>\n{q['question']}\n{body}\n{MC_SUFFIX}"},
        {"from": "gpt", "value": LETTERS[answer_pos]},
    ]
    return rec


def open_record(src: dict, turns: list[tuple[str, str]]) -> dict:
    rec = _base(src["slide_id"], src["x"], src["y"], src.get("file_id"), "OPEN", "open")
    conv = []
    for i, (q, a) in enumerate(turns):
        conv.append({"from": "human", "value": f"<image>\n{q}" if i == 0 else q})
        conv.append({"from": "gpt", "value": a})
    rec["conversations"] = conv
    return rec


def validate_record(rec: dict, correct_text: str | None = None) -> list[str]:
    """Reasons the record is invalid (empty list = valid)."""
    problems = []
    for key in ("id", "image", "conversations", "type", "wsi_id", "position"):
        if key not in rec:
            problems.append(f"missing key {key}")
    conv = rec.get("conversations") or []
    if len(conv) < 2 or len(conv) % 2:
        problems.append("conversations must hold human/gpt pairs")
    for i, turn in enumerate(conv):
        if turn.get("from") != ("human" if i % 2 == 0 else "gpt") or not str(turn.get("value", "")).strip():
            problems.append(f"turn {i} has wrong speaker or empty text")
    if conv and conv[0].get("value", "").count("<image>") != 1:
        problems.append("first human turn must contain <image> exactly once")
    if any("<image>" in t.get("value", "") for t in conv[1:]):
        problems.append("<image> appears after the first turn")
    if rec.get("type") == "CLOSE" and not problems:
        options = dict(_OPTION_RE.findall(conv[0]["value"]))
        answer = conv[1]["value"].strip()
        if sorted(options) != list(LETTERS):
            problems.append("CLOSE needs options A-D")
        elif answer not in options:
            problems.append(f"CLOSE answer {answer!r} is not a letter A-D")
        elif correct_text is not None and options[answer] != correct_text:
            problems.append("CLOSE answer letter does not point at the correct option")
        elif len(set(options.values())) != 4:
            problems.append("CLOSE options are not distinct")
    if rec.get("type") not in ("CLOSE", "OPEN"):
        problems.append("type must be CLOSE or OPEN")
    return problems


def dedupe_key(rec: dict) -> tuple:
    first = re.sub(r"\s+", " ", rec["conversations"][0]["value"].lower()).strip()
    return rec["image"], rec["type"], first
