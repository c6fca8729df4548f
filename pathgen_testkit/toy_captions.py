"""Toy teacher data for the agents tests: synthetic patches (pathgen_testkit.patches)
and per-slide caption JSONLs with the caption-record fields build-data reads (slide_id, x, y,
image relative to the patches folder, mpp, status, describe, revise; see
pathgen/captioning/pipeline.py base_record)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .patches import MPP, write_selection

TOY = {
    "slide_a": [("tumour", "Dense sheets of tumour cells with hyperchromatic nuclei. The cytoplasm "
                           "is scant and eosinophilic."),
                ("stroma", "Loose fibrous stroma with sparse fibroblasts. Small vessels are seen.")],
    "slide_b": [("tumour", "Nests of tumour cells with vesicular nuclei. Scattered lymphocytes "
                           "are present at the border."),
                ("stroma", "Dense collagenous stroma with few fibroblasts and scattered "
                           "lymphocytes.")],
    "slide_c": [("lymphoid", "Sheets of lymphocytes with small dense nuclei. Few plasma cells "
                             "are seen."),
                ("stroma", "Sparse fibroblasts in loose stroma. Foci of necrosis are present.")],
}


def write_toy_captions(root: Path, slides=tuple(TOY), failed: bool = False) -> tuple[list[Path], Path]:
    """One caption JSONL per slide (+ a failed record when ``failed``); returns (files, patches)."""
    files, patches = [], None
    for slide in slides:
        kinds = [k for k, _ in TOY[slide]]
        csv_path, patches = write_selection(root, slide, kinds=kinds)
        recs = []
        for i, (_, text) in enumerate(TOY[slide]):
            x, y = 512 * i, 1024
            recs.append({"slide_id": slide, "x": x, "y": y, "level": 0, "size": 512, "mpp": MPP,
                         "image": f"{slide}/{x}_{y}.jpg", "status": "ok", "describe": text,
                         "revise": text, "caption": text})
        if failed:
            recs.append({**recs[0], "x": 9999, "status": "failed", "describe": None,
                         "error": "describe: timeout"})
        out = root / "captions" / f"{slide}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r) + "\n" for r in recs))
        files.append(out)
    return files, patches


def toy_words() -> list[str]:
    return sorted({w for _, t in sum(TOY.values(), []) for w in re.findall(r"[a-z]+", t.lower())})
