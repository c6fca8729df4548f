"""Tissue segmentation and patch-grid tiling (coords HDF5, QC JPEG, tissue GeoJSON)."""

from .h5io import read_coords, write_coords
from .pipeline import TilingResult, mpp_override_for, mpp_overrides_for_run, tile_slide

__all__ = ["tile_slide", "TilingResult", "mpp_override_for", "mpp_overrides_for_run", "read_coords", "write_coords"]
