"""Tissue contours as a GeoJSON FeatureCollection that QuPath imports as annotations.

QuPath convention: one Feature per object, ``properties.objectType = "annotation"`` and
``properties.classification = {name, color}``; Polygon coordinates = [outer ring, *holes],
each ring closed (first point repeated), in level-0 pixels. Every geometry is valid for
shapely/GEOS (``polygons.valid_geometry``): a tissue piece whose traced outline touches
itself becomes a MultiPolygon (still one annotation in QuPath).
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from ..atomic import write_text
from .polygons import valid_geometry
from .segment import TissueRegion

TISSUE_CLASS = {"name": "Tissue", "color": [0, 200, 0]}
_NS = uuid.UUID("6f1b0c3e-9a52-4c1e-8d7a-2f3c5b9e0a11")  # deterministic feature ids


def contours_feature_collection(regions: list[TissueRegion], slide_id: str = "") -> dict[str, Any]:
    features = []
    for i, region in enumerate(regions):
        geometry = valid_geometry(region.outer, region.holes)
        if geometry is None:
            continue
        features.append({
            "type": "Feature",
            "id": str(uuid.uuid5(_NS, f"{slide_id}/{i}")),
            "geometry": geometry,
            "properties": {"objectType": "annotation", "classification": dict(TISSUE_CLASS),
                           "isLocked": False, "area_um2": round(region.area_um2, 1)},
        })
    return {"type": "FeatureCollection", "features": features}


def write_contours(path: str | os.PathLike, regions: list[TissueRegion], slide_id: str = "") -> None:
    write_text(path, json.dumps(contours_feature_collection(regions, slide_id)) + "\n")
