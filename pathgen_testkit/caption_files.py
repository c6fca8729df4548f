"""A slide's caption files as the captioning stage writes them (docs/architecture.md
"Captions": `<slide>.jsonl`, `.rejects.jsonl`, `.summary.json`, and the patches they point
at), for the dataset tests."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image


def make_slide(feat_dir, slide, n_ok, n_rej, start=0):
    """Caption files as the captioning stage writes them (docs/architecture.md "Captions")."""
    patches = feat_dir / "selection" / "patches" / slide
    patches.mkdir(parents=True, exist_ok=True)
    cap_dir = feat_dir / "captions_test"
    cap_dir.mkdir(exist_ok=True)
    recs = []
    for i in range(n_ok + n_rej):
        x, y = 256 * (start + i), 128
        Image.fromarray(np.full((16, 16, 3), 10 * i, np.uint8)).save(patches / f"{x}_{y}.jpg", quality=90)
        ok = i < n_ok
        recs.append({"slide_id": slide, "x": x, "y": y, "level": 0, "size": 16, "mpp": 0.5,
                     "image": f"{slide}/{x}_{y}.jpg", "backend": "morphometric",
                     "model": "morphometric-v1", "prompt_hash": "abc",
                     "describe": f"describe {i} <b>", "revise": f"revise {i}",
                     "caption": f"caption {i} of {slide}:\tdense\nnuclei & \"glands\"" if ok else "bad",
                     "revise_changed": False, "revise_edit_ratio": 0.0, "n_tokens": 10,
                     "timings": {}, "attempts": 1, "status": "ok", "error": None,
                     "accepted": ok, "reject_reasons": [] if ok else ["too_short"]})
    path = cap_dir / f"{slide}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    (cap_dir / f"{slide}.rejects.jsonl").write_text(json.dumps(
        {"slide_id": slide, "x": 9, "y": 9, "caption": "", "status": "failed",
         "accepted": False, "reject_reasons": []}) + "\n")
    (cap_dir / f"{slide}.summary.json").write_text(json.dumps(
        {"n": n_ok + n_rej, "reject_reasons": {"too_short": n_rej, "refusal": 0}}))
    return path
