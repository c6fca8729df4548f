"""HDF5 attribute values as plain Python (h5py returns bytes and numpy scalars)."""

from __future__ import annotations

from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
