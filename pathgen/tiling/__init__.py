"""Tissue segmentation and patch-grid tiling (coords HDF5, QC JPEG, tissue GeoJSON)."""


__all__ = ["tile_slide", "TilingResult", "mpp_override_for", "mpp_overrides_for_run", "read_coords", "write_coords"]

from ..lazy import lazy_exports  # noqa: E402

_EXPORTS = {
    "read_coords": ".h5io",
    "write_coords": ".h5io",
    "TilingResult": ".pipeline",
    "mpp_override_for": ".pipeline",
    "mpp_overrides_for_run": ".pipeline",
    "tile_slide": ".pipeline",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
