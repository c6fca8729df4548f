"""Tissue contours as a GeoJSON FeatureCollection that QuPath imports as annotations.

QuPath convention: one Feature per object, ``properties.objectType = "annotation"`` and
``properties.classification = {name, color}``; Polygon coordinates = [outer ring, *holes],
each ring closed (first point repeated), in level-0 pixels.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import numpy as np

from ..atomic import write_text
from .segment import TissueRegion

TISSUE_CLASS = {"name": "Tissue", "color": [0, 200, 0]}
_NS = uuid.UUID("6f1b0c3e-9a52-4c1e-8d7a-2f3c5b9e0a11")  # deterministic feature ids


def _ring(points: np.ndarray) -> list[list[float]] | None:
    pts = [[round(float(x), 1), round(float(y), 1)] for x, y in points]
    if len(pts) < 3:
        return None  # a line or point cannot be a polygon ring
    pts.append(pts[0])
    return pts


def contours_feature_collection(regions: list[TissueRegion], slide_id: str = "") -> dict[str, Any]:
    features = []
    for i, region in enumerate(regions):
        outer = _ring(region.outer)
        if outer is None:
            continue
        rings = [outer] + [r for r in (_ring(h) for h in region.holes) if r is not None]
        features.append({
            "type": "Feature",
            "id": str(uuid.uuid5(_NS, f"{slide_id}/{i}")),
            "geometry": {"type": "Polygon", "coordinates": rings},
            "properties": {"objectType": "annotation", "classification": dict(TISSUE_CLASS),
                           "isLocked": False, "area_um2": round(region.area_um2, 1)},
        })
    return {"type": "FeatureCollection", "features": features}


def write_contours(path: str | os.PathLike, regions: list[TissueRegion], slide_id: str = "") -> None:
    write_text(path, json.dumps(contours_feature_collection(regions, slide_id)) + "\n")
