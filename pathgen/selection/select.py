"""One slide's selection: features HDF5 + slide -> selection CSV + selected patch images.

CSV columns: pathgen/formats/selection_csv.py (docs/architecture.md "Selection").
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..atomic import atomic_dir
from ..config import ConfigError
from ..config.selection import SelectionConfig
from ..features.h5io import read_features
from . import vectors
from ..formats.selection_csv import SELECTION_COLUMNS, SelectionRow, read_selection_rows, write_selection_csv
from .patches import save_patches

log = logging.getLogger(__name__)

CSV_COLUMNS = list(SELECTION_COLUMNS)  # kept for callers of the old name

TextEncoder = Callable[[list[str]], np.ndarray]


@dataclass
class FeatureFile:
    features: np.ndarray
    coords: np.ndarray
    attrs: dict


def _as_int(v) -> int:
    return int(np.asarray(v).reshape(-1)[0])


def read_feature_file(path: str | os.PathLike) -> FeatureFile:
    """Features HDF5 (docs/architecture.md): `features` (N, D), `coords` (N, 2) + attrs, read by
    pathgen.features.h5io; the coords attributes (patch_size, patch_size_level0) are merged
    into `attrs`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"features file {path} does not exist (run the features stage)")
    feats, coords, attrs = read_features(path)
    attrs = {**dict(attrs.get("coords") or {}), **dict(attrs)}
    feats = np.asarray(feats, dtype=np.float32)
    coords = np.asarray(coords, dtype=np.int64).reshape(-1, 2)
    if feats.ndim != 2:
        feats = feats.reshape(len(coords), -1)
    for key in ("patch_size", "patch_size_level0"):
        if key not in attrs:
            raise ValueError(f"features file {path} lacks the coords attribute '{key}' "
                             "(see docs/architecture.md); re-run tiling/features")
    return FeatureFile(feats, coords, attrs)


def _fmt_score(s: float) -> str:
    return f"{s:.4f}"


def select_slide(features_path: str | os.PathLike, slide_path: str | os.PathLike | None,
                 slide_id: str, out_csv: str | os.PathLike, patches_dir: str | os.PathLike,
                 prompts: list[str], text_encoder: TextEncoder | None,
                 params: SelectionConfig) -> dict:
    """Run selection for one slide and write both outputs atomically. Returns stats."""
    ff = read_feature_file(features_path)
    n = len(ff.features)
    text_emb = None
    if n and prompts and text_encoder is not None and params.prompt_top_k > 0:
        text_emb = np.asarray(text_encoder(prompts), dtype=np.float32)
    kept, stats = vectors.select(
        ff.features, text_emb, prompts if text_emb is not None else [],
        top_k=params.prompt_top_k, factor=params.kmeans_factor, cap=params.max_per_slide,
        seed=params.seed, n_init=params.kmeans_n_init, dedupe_cosine=params.dedupe_cosine,
        min_keep=params.dedupe_min_keep)
    if stats["dedupe_restored"]:
        log.warning("%s: near-duplicate removal would have emptied the selection: %s",
                    slide_id, stats["dedupe_note"])
    elif stats["dedupe_removed"]:
        log.info("%s: %s", slide_id, stats["dedupe_note"])
    size0 = _as_int(ff.attrs["patch_size_level0"])
    # size_px = patch side at the tiling target mpp (what captioning derives µm/px from);
    # the saved file may be resized to image_size_px (readers scale by the file's own size).
    size_px = _as_int(ff.attrs["patch_size"])
    out_px = params.image_size_px or size_px
    # Reading order = slide order (row-major) is kinder to the tile cache than priority order.
    order = sorted(range(len(kept)), key=lambda r: (int(ff.coords[kept[r].index][1]),
                                                    int(ff.coords[kept[r].index][0])))
    xy = [tuple(int(v) for v in ff.coords[kept[r].index]) for r in order]
    if xy and slide_path is None:
        raise ConfigError(f"selection for {slide_id} needs the slide file to cut patches from")
    with atomic_dir(patches_dir) as tmp_dir:
        names = save_patches(slide_path, slide_id, xy, size0, out_px, Path(tmp_dir),
                             params.image_format, params.jpeg_quality)
    image_of = {order[i]: names[i] for i in range(len(order))}
    write_selection_csv(out_csv, [
        SelectionRow(slide_id, *(int(v) for v in ff.coords[c.index]), level=0, patch_size_level0=size0,
                     size_px=size_px, source=c.source, score=_fmt_score(c.score), prompt=c.prompt,
                     cluster_id=c.cluster_id, image=image_of[r])
        for r, c in enumerate(kept)])
    stats.update(slide_id=slide_id, size_px=size_px, image_px=out_px, patch_size_level0=size0,
                 sources={s: sum(c.source == s for c in kept)
                          for s in (vectors.SOURCE_PROMPT, vectors.SOURCE_CLUSTER, vectors.SOURCE_BOTH)})
    log.info("%s: %d patches, %d prompts, k=%d -> %d selected %s", slide_id, n, len(prompts),
             stats["k"], len(kept), stats["sources"])
    return stats


def read_selection(path: str | os.PathLike) -> list[dict]:
    """Read a selection CSV back as dicts (tests, tools); checks the header."""
    return [row for _, row in read_selection_rows(path)]
