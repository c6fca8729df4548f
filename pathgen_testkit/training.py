"""Training-test inputs: a micro open_clip model config and a config that trains it for one
tiny epoch (`cfg_for`), image-text pairs (`make_pairs`), a caption dataset folder as the
dataset stage writes it (`caption_dataset`), a slide-labels table (`labels_csv`), and `train`:
pathgen.training.run.train with the arguments `pathgen train` resolves from the whole config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pathgen.config import validate_config
from pathgen.dataset.pathgen_json import write_pathgen_json
from pathgen.training.run import train as train_on
from pathgen.training.workflow import train_arguments

# Smaller than pathgen-tiny-vit so one epoch takes seconds on a shared CPU.
MICRO = {"embed_dim": 32,
         "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 8},
         "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1}}


def make_pairs(root: Path, n: int = 8, sep: str = ",", card: bool = False,
               absolute: bool = False) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = [sep.join(["filepath", "title"])]
    for i in range(n):
        colour = ("red", "blue")[i % 2]
        arr = np.zeros((32, 32, 3), np.uint8)
        arr[..., 0 if colour == "red" else 2] = 200
        arr += rng.integers(0, 40, arr.shape, dtype=np.uint8)
        Image.fromarray(arr).save(root / "images" / f"{i}.png")
        img = root / "images" / f"{i}.png" if absolute else f"images/{i}.png"
        lines.append(sep.join([str(img), f"a {colour} patch"]))
    csv = root / "open_clip.csv"
    csv.write_text("\n".join(lines) + "\n")
    if card:
        (root / "dataset_card.json").write_text(json.dumps({"csv_separator": sep}))
    return csv


def cfg_for(tmp_path: Path, **training):
    micro = tmp_path / "pathgen-micro.json"
    micro.write_text(json.dumps(MICRO))
    base = dict(arch="pathgen-micro", model_config_file=str(micro), epochs=1, batch_size=4,
                warmup=1, workers=0, log_every_n_steps=1, lr=1e-3)
    base.update(training)
    return validate_config({"results_dir": str(tmp_path / "results"), "training": base})


def train(cfg, baseline=None, **kw):
    """run.train with the arguments `pathgen train` resolves from the whole config."""
    return train_on(**train_arguments(cfg, baseline), **kw)


SLIDES = {"s1": "tumor", "s2": "normal"}


def caption_dataset(root: Path, slides=("s1", "s2", "s3"), per_slide: int = 3) -> Path:
    """A caption dataset folder as pathgen's dataset stage writes it (documented layout:
    images/<slide>/<x>_<y>.jpg, open_clip.csv in pathgen.json's order, dataset_card.json)."""
    rows, recs = [], []
    for s in slides:
        (root / "images" / s).mkdir(parents=True, exist_ok=True)
        for i in range(per_slide):
            img = root / "images" / s / f"{i * 10}_0.jpg"
            Image.new("RGB", (16, 16), (200, 20 * i, 90)).save(img)
            rows.append({"filepath": str(img), "title": f"caption {s} {i} with its own words"})
            recs.append({"slide_id": s, "x": i * 10, "y": 0, "caption": rows[-1]["title"]})
    pd.DataFrame(rows).to_csv(root / "open_clip.csv", sep="\t", index=False)
    write_pathgen_json(root / "pathgen.json", recs)
    (root / "dataset_card.json").write_text(json.dumps(
        {"csv_separator": "\t", "csv_img_key": "filepath", "csv_caption_key": "title"}))
    return root


def labels_csv(path: Path, labels=SLIDES) -> Path:
    pd.DataFrame({"case_id": [f"c_{s}" for s in labels], "slide_id": list(labels),
                  "label": list(labels.values())}).to_csv(path, index=False)
    return path
