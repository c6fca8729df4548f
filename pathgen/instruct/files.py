"""File names of the instruction data (``<results>/instruct/``, PathGen-Instruct release).

No config import.
"""

from __future__ import annotations

from pathlib import Path

INSTRUCT_DIR = "instruct"             # <results>/instruct/
INSTRUCT_JSON = "pathgen_instruct.json"
INSTRUCT_PARQUET = "pathgen_instruct.parquet"
INSTRUCT_CARD_JSON = "instruct_card.json"
INSTRUCT_CARD_MD = "instruct_card.md"
INSTRUCT_REJECTS_JSONL = "rejects.jsonl"
INSTRUCT_IMAGES_DIR = "images"


def instruct_files(out_dir: str | Path) -> dict[str, Path]:
    """Every file build_instruct writes in ``out_dir`` (the rule's outputs and companions)."""
    d = Path(out_dir)
    return {"json": d / INSTRUCT_JSON, "parquet": d / INSTRUCT_PARQUET, "card": d / INSTRUCT_CARD_JSON,
            "card_md": d / INSTRUCT_CARD_MD, "rejects": d / INSTRUCT_REJECTS_JSONL,
            "images": d / INSTRUCT_IMAGES_DIR}


def instruct_drafts(out_dir: str | Path, tag: str) -> Path:
    """Resume aid of build_instruct, named by the settings that shape drafts."""
    return Path(out_dir) / f"drafts.{tag}.partial.jsonl"


def instruct_image(wsi_id: str, x: int, y: int) -> str:
    """An instruct record's image, relative to the images folder (PathGen-Instruct release)."""
    return f"{wsi_id}/{x}_{y}.jpg"
