"""For the caption audit's tests (tests/test_audit.py, tests/test_audit_browser.py): a real
dataset folder (built by pathgen.dataset.build_dataset from caption files as the captioning
stage writes them), a config whose sample sheet gives the slides' cancer types, and a review
server in a thread."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# slide -> cancer type in the sample sheet ("" = none: selection.cancer_type, i.e. generic)
SLIDES = {"S1": "BRCA", "S2": "BRCA", "S3": "LUAD", "S4": ""}
PER_SLIDE = 5
HOSTILE = 'Glands <script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> present.'


def caption_of(slide: str, i: int) -> str:
    first = HOSTILE if (slide, i) == ("S1", 0) else f"Glands of {slide} number {i} are present."
    return f"{first} Nuclei are enlarged, approx. 2.5 times normal. Mitoses are rare."


def write_captions(root: Path) -> list[Path]:
    """Caption JSONL files (docs/architecture.md "Captions") and their patches."""
    fd = root / "features_x"
    files = []
    for s, slide in enumerate(SLIDES):
        patches = fd / "selection" / "patches" / slide
        patches.mkdir(parents=True, exist_ok=True)
        cap_dir = fd / "captions_t"
        cap_dir.mkdir(exist_ok=True)
        recs = []
        for i in range(PER_SLIDE):
            x, y = 64 * i, 32
            img = np.zeros((64, 64, 3), np.uint8)
            img[..., 0] = 40 * s + 10 * i
            img[8:24, 8:24, 1] = 200  # something to zoom in on
            Image.fromarray(img).save(patches / f"{x}_{y}.jpg", quality=95)
            recs.append({"slide_id": slide, "x": x, "y": y, "level": 0, "size": 64, "mpp": 0.5,
                         "image": f"{slide}/{x}_{y}.jpg", "backend": "morphometric", "model": "m1",
                         "prompt_hash": "h",
                         "describe": f"Glands are present. Nuclei are large. Mitoses number {i}.",
                         "revise": f"Glands are present. Nuclei are large and pale. Stroma {i}.",
                         "caption": caption_of(slide, i), "revise_changed": True, "n_tokens": 20,
                         "status": "ok", "accepted": True, "reject_reasons": []})
        path = cap_dir / f"{slide}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
        files.append(path)
    return files


def build_dataset_folder(root: Path) -> tuple[Path, Path]:
    """(dataset folder, config YAML with a sample sheet of cancer types) under ``root``."""
    from pathgen.config.dataset import DatasetConfig
    from pathgen.dataset import build_dataset

    root.mkdir(parents=True, exist_ok=True)
    files = write_captions(root)
    with pytest.MonkeyPatch.context() as mp:  # the card's open_clip tokenizer: slow, not tested here
        mp.setattr("pathgen.dataset.card.token_counter", lambda arch: (lambda t: len(t.split()) + 2, "words"))
        build_dataset(files, root / "dataset", DatasetConfig(shard_size=7, gallery_size=2))
    sheet = root / "sheet.csv"
    sheet.write_text("slide_id,path,cancer_type,site\n" + "".join(
        f"{s},/nowhere/{s}.svs,{t},{'left' if k % 2 else 'right'}\n" for k, (s, t) in enumerate(SLIDES.items())))
    cfg = root / "config.yaml"
    cfg.write_text(f"slides:\n  sample_sheet: {sheet}\ndemo:\n  enabled: false\nresults_dir: {root / 'results'}\n")
    return root / "dataset", cfg


@contextlib.contextmanager
def running_server(audit_dir: Path):
    from pathgen.audit.server import make_server

    server = make_server(audit_dir, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
