"""Patch feature extraction (slide + coords HDF5 -> features HDF5)."""


__all__ = ["FeaturesFileError", "read_features", "write_features", "extract_features"]

from ..lazy import lazy_exports  # noqa: E402

# h5io pulls in h5py, extract torch/encoders: import them only when asked (pathgen.paths
# imports .files, and the Snakefile pathgen.paths)
_EXPORTS = {
    "FeaturesFileError": ".h5io",
    "read_features": ".h5io",
    "write_features": ".h5io",
    "extract_features": ".extract",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
