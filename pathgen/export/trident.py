"""`pathgen export trident`: the folder layout TRIDENT's batch ``Processor`` looks for.

TRIDENT's contract: a job folder holds one folder per patching geometry,
``<mag>x_<px>px_<ov>px_overlap`` (target magnification, patch px at it, overlap px), with
``patches/<slide>_patches.h5`` (``coords`` + TRIDENT's attributes) and, per patch encoder,
``features_<encoder>/<slide>.h5`` (``features`` + ``coords``). pathgen's coords already
carry TRIDENT's meaning of ``patch_size``, so the attributes travel unchanged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..tiling.conventions import readings, same_field
from .files import trident_export_files, trident_geometry_dir
from .sources import ExportError, SlideSource, collect, write_h5

log = logging.getLogger(__name__)


def magnification_label(mag: float) -> str:
    """How TRIDENT spells a magnification in folder names: 20 -> '20', 33.33 -> '33.33'."""
    return str(int(round(mag))) if abs(mag - round(mag)) < 1e-6 else f"{mag:.2f}".rstrip("0")


def geometry_dir(job_dir: Path, attrs: dict[str, Any]) -> Path:
    mag = float(attrs["target_magnification"])
    if abs(mag - round(mag)) >= 1e-6:
        log.warning("target magnification %.4g is not a whole number; TRIDENT's CLI only takes "
                    "whole magnifications, so point its Processor at the folder by hand", mag)
    return trident_geometry_dir(job_dir, magnification_label(mag), int(attrs["patch_size"]),
                                       int(attrs.get("overlap", 0)))


def _check_trident_meaning(src: SlideSource) -> None:
    seen = readings(src.coords_attrs)
    if "TRIDENT" not in seen or not same_field(seen["TRIDENT"], seen.get("pathgen", seen["TRIDENT"])):
        raise ExportError(f"{src.coords_path}: patch_size does not mean px at target_magnification "
                          "here (a CLAM export?); export from pathgen's own coords/features files")


def export_slide(src: SlideSource, job_dir: Path) -> dict[str, Any]:
    _check_trident_meaning(src)
    geo_dir = geometry_dir(job_dir, src.coords_attrs)
    encoder = str(src.root_attrs.get("encoder", "")) if src.features is not None else ""
    files = trident_export_files(geo_dir, src.slide_id, encoder or "none")
    attrs = {**src.coords_attrs, "savetodir": str(files["coords"].parent)}
    write_h5(files["coords"], {"coords": (src.coords, attrs)})
    row = {"slide_id": src.slide_id, "n": len(src.coords), "geometry": geo_dir.name,
           "coords": files["coords"]}
    if src.features is not None:
        if not encoder:
            raise ExportError(f"{src.features_path} has no 'encoder' root attribute to name "
                              "features_<encoder>/; re-run `pathgen features`")
        write_h5(files["features"], {"features": (src.features, {}), "coords": (src.coords, attrs)},
                 src.root_attrs)
        row.update(features=files["features"], dim=src.features.shape[1])
    return row


def export_trident(job_dir: str | os.PathLike, coords: str | os.PathLike | None = None,
                   features: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Write TRIDENT's job layout under ``job_dir`` for every slide given; one row each."""
    return [export_slide(src, Path(job_dir)) for src in collect(coords, features)]
