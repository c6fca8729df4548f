"""Patch feature extraction (slide + coords HDF5 -> features HDF5)."""

from .h5io import FeaturesFileError, read_features, write_features

__all__ = ["FeaturesFileError", "read_features", "write_features", "extract_features"]


def __getattr__(name):  # extract pulls in torch/encoders: import it only when asked
    if name == "extract_features":
        from .extract import extract_features
        return extract_features
    raise AttributeError(name)
