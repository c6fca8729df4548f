"""Synthetic MIL feature sets for the tests and the epoch benchmark (bench/mil_epoch.py):
clearly not real data, and not part of pathgen.

Each slide is a bag of Gaussian instance features; in slides of class c > 0 a fraction of
instances is shifted along a class-specific direction (a "lesion" signal), so a MIL model
can learn the task while instance-mean pooling sees only a diluted signal.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch

from pathgen.export.files import clam_export_files
from pathgen.features.files import slide_features_file

from .feature_files import write_features_file


def synthetic_cohort(n_patients: int = 20, n_classes: int = 2, slides_per_patient=(1, 2),
                     seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        y = p % n_classes
        for s in range(rng.integers(slides_per_patient[0], slides_per_patient[1] + 1)):
            rows.append({"case_id": f"case_{p:03d}", "slide_id": f"slide_{p:03d}_{s}", "label": f"c{y}"})
    return pd.DataFrame(rows)


def _feature_path(out_dir: Path, slide: str, layout: str) -> Path:
    """CLAM keeps h5_files/ and pt_files/ subfolders; pathgen, TRIDENT and STAMP a flat folder."""
    clam = clam_export_files(out_dir, slide)
    return {"clam_h5": clam["h5"], "clam_pt": clam["pt"]}.get(layout) or slide_features_file(out_dir, slide)


def write_synthetic_features(out_dir: Path, table: pd.DataFrame, classes: list[str], dim: int = 32,
                             n_patches=(20, 60), signal: float = 2.0, fraction: float = 0.2,
                             layout: str = "pathgen", dtype: str = "float32", row_chunks: bool = False,
                             patch_size: int = 256, seed: int = 0) -> Path:
    """Write one feature file per slide in `layout` (pathgen | trident | clam_h5 | clam_pt | stamp).

    pathgen and TRIDENT files (one format) come from pathgen's own writer
    (pathgen_testkit.feature_files); CLAM's and STAMP's are written here as those tools write
    them. `row_chunks=True` stores CLAM h5 features one row per HDF5 chunk, as CLAM's writer does.
    """
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(len(classes), dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for sid, label in zip(table["slide_id"], table["label"]):
        y = classes.index(label)
        n = int(rng.integers(n_patches[0], n_patches[1] + 1)) if isinstance(n_patches, tuple) else int(n_patches)
        x = rng.normal(size=(n, dim)).astype(np.float32)
        if y > 0 and n:
            hit = rng.random(n) < fraction
            hit[rng.integers(n)] = True
            x[hit] += signal * directions[y]
        side = max(1, int(np.ceil(np.sqrt(n))))
        coords = np.array([(i % side, i // side) for i in range(n)], dtype=np.int64).reshape(n, 2) * patch_size
        feats = x.astype(dtype)
        path = _feature_path(out_dir, sid, layout)
        path.parent.mkdir(parents=True, exist_ok=True)
        if layout == "clam_pt":
            torch.save(torch.from_numpy(feats), path)
            continue
        if layout in ("pathgen", "trident"):
            write_features_file(path, feats, coords, patch_size, patch_size, encoder="synthetic",
                                dtype=dtype)
            continue
        with h5py.File(path, "w") as f:
            key = "feats" if layout == "stamp" else "features"
            chunks = (1, dim) if row_chunks and n else None
            f.create_dataset(key, data=feats, chunks=chunks, maxshape=(None, dim) if chunks else None)
            if layout == "stamp":
                f["coords"] = coords.astype(np.float64) * 0.5
                f.attrs.update({"unit": "um", "extractor": "synthetic"})
                continue
            c = f.create_dataset("coords", data=coords)
            c.attrs.update({"patch_size": patch_size, "patch_level": 0, "downsample": [1.0, 1.0],
                            "patch_size_level0": patch_size})
            f.attrs.update({"encoder": "synthetic", "embed_dim": dim})
    return out_dir
