"""Training data of the comparison CLIPs (training.baselines), built from the caption dataset.

``slide_text``: the same patch images as the caption dataset, each paired with its slide's
label sentence (training.slide_text.template) instead of its own caption -- what a CLIP learns
from slide-level report text alone. Rows follow the caption dataset's open_clip CSV; the slide
of each row comes from the PathGen JSON written beside it in the same order (``wsi_id``).
The caption dataset's files are given one by one (keys of pathgen.dataset.files.dataset_files).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..atomic import atomic_path, write_json
from ..config import ConfigError
from ..config.training import SlideTextConfig
from ..dataset.pathgen_json import read_pathgen_json
from .data import read_pairs_csv, separator_for

log = logging.getLogger(__name__)

def read_slide_labels(path: Path, column: str) -> dict[str, str]:
    """slide_id -> label from a CLAM dataset CSV (other columns ignored)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"slide labels table {path} does not exist (training.slide_text.labels)")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("slide_id", column) if c not in df.columns]
    if missing:
        raise ConfigError(f"{path}: columns {missing} not found (have {list(df.columns)}); the "
                          "table needs slide_id and training.slide_text.label_column")
    dup = df["slide_id"][df["slide_id"].duplicated()].tolist()
    if dup:
        raise ConfigError(f"{path}: slide ids listed twice: {dup[:5]}; one label per slide")
    return dict(zip(df["slide_id"], df[column]))


def slide_text_pairs(dataset: dict[str, Path], labels: dict[str, str], sentence) -> tuple[pd.DataFrame, dict]:
    """(pairs with the caption CSV's columns, counts): every image of the caption dataset
    (``dataset``: its open_clip_csv, card_json and pathgen_json) with ``sentence(label of its
    slide)``; patches of unlabelled slides are left out."""
    card = _card(Path(dataset["card_json"]))
    csv_path = Path(dataset["open_clip_csv"])
    dataset_dir = csv_path.parent
    img_key, cap_key = card.get("csv_img_key", "filepath"), card.get("csv_caption_key", "title")
    df = read_pairs_csv(csv_path, separator_for(csv_path, None, img_key, cap_key), img_key, cap_key)
    records = read_pathgen_json(Path(dataset["pathgen_json"]))
    if len(records) != len(df):
        raise ConfigError(f"{dataset_dir}: {len(df)} CSV rows but {len(records)} PathGen JSON "
                          "records; rebuild the caption dataset (rule build_dataset)")
    slides = [r["wsi_id"] for r in records]
    for img, slide in zip(df[img_key], slides):
        if Path(img).parent.name != slide:  # images/<slide_id>/<x>_<y>.jpg (dataset/build.py)
            raise ConfigError(f"{csv_path}: row {img} is not an image of slide {slide} (the "
                              "CSV and pathgen.json disagree); rebuild the caption dataset")
    keep = [s in labels for s in slides]
    unlabelled = sorted({s for s, k in zip(slides, keep) if not k})
    if unlabelled:
        log.warning("slide_text: %d slides have no label and are left out: %s", len(unlabelled),
                    ", ".join(unlabelled[:10]))
    out = df.loc[keep, [img_key]].copy()
    # relative image paths (dataset.csv_paths: relative) are relative to the dataset folder
    out[img_key] = [p if Path(p).is_absolute() else str((dataset_dir / p).resolve())
                    for p in out[img_key]]
    out[cap_key] = [sentence(labels[s]) for s, k in zip(slides, keep) if k]
    if out.empty:
        raise ConfigError("slide_text: no captioned slide has a label in the labels table; check "
                          "training.slide_text.labels and its slide_id column")
    counts = {"n_pairs": len(out), "n_slides": len(set(slides) - set(unlabelled)),
              "n_unlabelled_slides": len(unlabelled),
              "sentences": {lab: sentence(lab) for lab in sorted(set(labels.values()))}}
    return out, {"csv_separator": card.get("csv_separator", "\t"), "csv_img_key": img_key,
                 "csv_caption_key": cap_key, **counts}


def _card(path: Path) -> dict:
    import json

    if not path.is_file():
        raise FileNotFoundError(f"caption dataset card {path} does not exist (rule build_dataset)")
    return json.loads(path.read_text())


def build_slide_text_dataset(st: SlideTextConfig, dataset: dict[str, Path], labels: Path,
                             out: dict[str, Path]) -> dict:
    """Write the slide_text baseline's open_clip CSV + card (``out``: Layout.training_data_files)
    from the caption dataset's files (``dataset``, see slide_text_pairs) and the CLAM labels
    table ``labels``, with the training.slide_text settings ``st``."""
    table = read_slide_labels(Path(labels), st.label_column)
    pairs, card = slide_text_pairs(dataset, table, st.sentence)
    src = Path(dataset["open_clip_csv"]).parent
    with atomic_path(out["csv"]) as tmp:
        pairs.to_csv(tmp, sep=card["csv_separator"], index=False)
    card = {"baseline": "slide_text", "source": str(src), **card}
    write_json(out["card"], card)
    log.info("slide_text baseline: %d pairs from %d slides -> %s", card["n_pairs"], card["n_slides"],
             out["csv"])
    return card
