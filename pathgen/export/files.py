"""The peers' folder layouts ``pathgen export`` writes (CLAM and TRIDENT conventions).

No config import.
"""

from __future__ import annotations

from pathlib import Path

from ..features.files import features_dir, slide_features_file

CLAM_PATCHES_DIR = "patches"   # CLAM create_patches: patches/<slide>.h5 (coords)
CLAM_H5_DIR = "h5_files"       # CLAM extract_features: h5_files/<slide>.h5 (features + coords)
CLAM_PT_DIR = "pt_files"       # ... and pt_files/<slide>.pt (the tensor its MIL loader reads)
TRIDENT_PATCHES_DIR = "patches"  # TRIDENT Processor: <geometry>/patches/<slide>_patches.h5


def clam_export_files(out_dir: str | Path, slide: str) -> dict[str, Path]:
    """CLAM's files for one slide under ``out_dir`` (its --data_h5_dir and --feat_dir)."""
    d = Path(out_dir)
    return {"coords": d / CLAM_PATCHES_DIR / f"{slide}.h5", "h5": d / CLAM_H5_DIR / f"{slide}.h5",
            "pt": d / CLAM_PT_DIR / f"{slide}.pt"}


def trident_geometry_dir(job_dir: str | Path, magnification: str, patch_px: int, overlap: int) -> Path:
    """TRIDENT's folder for one patching geometry: <mag>x_<px>px_<ov>px_overlap."""
    return Path(job_dir) / f"{magnification}x_{int(patch_px)}px_{int(overlap)}px_overlap"


def trident_export_files(geometry_dir: str | Path, slide: str, encoder: str) -> dict[str, Path]:
    """TRIDENT's coords and patch-features files for one slide in a geometry folder."""
    d = Path(geometry_dir)
    return {"coords": d / TRIDENT_PATCHES_DIR / f"{slide}_patches.h5",
            "features": slide_features_file(features_dir(d, encoder), slide)}
