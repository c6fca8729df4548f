"""Tissue segmentation and patch-grid tiling (coords HDF5, QC JPEG, tissue GeoJSON)."""

from .h5io import read_coords, write_coords
from .pipeline import TilingResult, mpp_override_for, tile_slide

__all__ = ["tile_slide", "TilingResult", "mpp_override_for", "read_coords", "write_coords"]
