"""File names of the dataset stage (``<results>/dataset/``, docs/architecture.md "Dataset"),
also read beside a user's own open_clip CSV or WebDataset shards.

No config import.
"""

from __future__ import annotations

from pathlib import Path

DATASET_DIR = "dataset"               # <results>/dataset/
OPEN_CLIP_CSV = "open_clip.csv"
DATASET_CARD_JSON = "dataset_card.json"
PATHGEN_JSON = "pathgen.json"         # PathGen release format, rows in the open_clip CSV's order
SHARDS_COUNT_JSON = "count.json"      # WebDataset shard folder: sample count
SHARDS_SIZES_JSON = "sizes.json"      # WebDataset shard folder: {shard basename: samples} (open_clip)
DATASET_CARD_MD = "dataset_card.md"
GALLERY_HTML = "gallery.html"
DATASET_IMAGES_DIR = "images"         # linked/copied patch images (paths in the CSV are relative to it)
DATASET_SHARDS_DIR = "shards"         # WebDataset shards + count.json / sizes.json
# Every file build_dataset writes, relative to the dataset folder (docs/architecture.md "Dataset").
DATASET_OUTPUTS = {"pathgen_json": PATHGEN_JSON, "open_clip_csv": OPEN_CLIP_CSV,
                   "shards_count": f"{DATASET_SHARDS_DIR}/{SHARDS_COUNT_JSON}",
                   "card_json": DATASET_CARD_JSON, "card_md": DATASET_CARD_MD, "gallery": GALLERY_HTML}


def dataset_files(out_dir: str | Path) -> dict[str, Path]:
    """Every file build_dataset writes in ``out_dir`` (DATASET_OUTPUTS, joined)."""
    return {k: Path(out_dir) / v for k, v in DATASET_OUTPUTS.items()}


def shards_count(shard_pattern: str | Path) -> Path:
    """count.json beside a WebDataset shard pattern (``.../shards/{00000..00009}.tar``)."""
    return Path(shard_pattern).parent / SHARDS_COUNT_JSON


def shard_count_files(shards_dir: str | Path) -> dict[str, Path]:
    """Sample counts beside WebDataset shards: pathgen's count.json, open_clip's sizes.json."""
    d = Path(shards_dir)
    return {"count": d / SHARDS_COUNT_JSON, "sizes": d / SHARDS_SIZES_JSON}


def dataset_card_beside(csv_path: str | Path) -> Path:
    """The dataset_card.json pathgen's dataset stage writes beside its open_clip CSV."""
    return Path(csv_path).parent / DATASET_CARD_JSON


def csv_and_card(data_dir: str | Path) -> dict[str, Path]:
    """An open_clip CSV and its dataset card in ``data_dir`` (a baseline's generated pairs)."""
    d = Path(data_dir)
    return {"csv": d / OPEN_CLIP_CSV, "card": d / DATASET_CARD_JSON}
