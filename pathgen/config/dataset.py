"""Config section for dataset assembly (PathGen JSON, open_clip CSV, WebDataset shards, card)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from .base import Section


class DatasetConfig(Section):
    accepted_only: bool = Field(True, description="Keep only caption records with accepted: true.")
    csv_separator: str = Field(
        "\t", description="open_clip CSV separator (TAB = open_clip's --csv-separator default); "
                          "recorded in dataset_card.json as csv_separator.")
    csv_img_key: str = Field("filepath", description="CSV image-path column (--csv-img-key).")
    csv_caption_key: str = Field("title", description="CSV caption column (--csv-caption-key).")
    csv_paths: Literal["absolute", "relative"] = Field(
        "absolute", description="Image paths in the CSV: absolute, or relative to the dataset "
                                "folder (then run training from that folder).")
    images: Literal["hardlink", "copy", "symlink"] = Field(
        "hardlink", description="How patch files get into dataset/images/ (hardlink falls back "
                                "to copy across file systems).")
    images_root: Path | None = Field(
        None, description="Folder the caption records' `image` paths are relative to; null = "
                          "<features dir>/selection/patches next to the captions folder.")
    shard_size: int = Field(1000, ge=1, description="Samples per WebDataset shard.")
    tokenizer_arch: str = Field("ViT-B-16", description="open_clip architecture whose tokenizer "
                                                        "counts caption tokens in the card.")
    context_length: int = Field(77, ge=1, description="Text context; captions above it are "
                                                      "reported as truncated.")
    gallery_size: int = Field(48, ge=0, description="Random patches shown in gallery.html.")
    seed: int = Field(0, description="Seed of the gallery sample.")
    file_ids: Path | None = Field(None, description="CSV slide_id,file_id (GDC file UUIDs) for "
                                                    "the PathGen JSON `file_id` field.")
    caption_stage: Literal["describe", "revise", "summarize"] = Field(
        "summarize", description="Which agent's text becomes the caption: summarize (the final "
                                 "caption), revise or describe (per-agent ablation).")
    dedup_cosine: float | None = Field(
        None, gt=0, le=1, description="Remove near-duplicate samples across the whole dataset "
                                      "(cosine >= this on the stored patch embeddings; the first "
                                      "of each group stays); null = off.")
    dedup_neighbors: int = Field(16, ge=1, description="Nearest neighbours searched per sample "
                                                       "for dedup.")
    dedup_exact_max: int = Field(50_000, ge=0, description="Up to this many samples dedup searches "
                                                          "exactly (faiss flat); above, faiss IVF.")
    dedup_nprobe: int = Field(8, ge=1, description="IVF cells probed per query (recall vs time).")

    @field_validator("csv_separator")
    @classmethod
    def _one_char(cls, v: str) -> str:
        v = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(v, v)
        if len(v) != 1 or v in "\"\n\r":
            raise ValueError("csv_separator must be one character (not a quote or newline), "
                             "e.g. '\\t' or ','")
        return v
