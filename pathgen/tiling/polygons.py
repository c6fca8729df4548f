"""Valid GeoJSON polygons from raster contours (shapely does the geometry).

OpenCV traces a mask's boundary pixel by pixel: a tissue piece joined by a one-pixel neck,
or a hole that touches the outline diagonally, gives a ring that crosses or touches itself,
and a simplified (approxPolyDP) ring can cut across its own holes. Such rings are invalid
OGC geometry: shapely/geopandas refuse most operations on them and QuPath may misdraw them.
Here every shell + holes goes through ``shapely.make_valid`` (``structure`` method: the
shell's area minus the holes' area), is snapped to a 0.1 px grid so the written decimals
stay valid, and is oriented as RFC 7946 asks (shells counter-clockwise, holes clockwise).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

GRID_PX = 0.1  # coordinates are written with one decimal


def _polygon_parts(geom) -> list:
    """The polygons of any geometry (lines and points left by make_valid are dropped)."""
    if isinstance(geom, shapely.Polygon):
        return [geom] if not geom.is_empty and geom.area > 0 else []
    if isinstance(geom, (shapely.MultiPolygon, shapely.GeometryCollection)):
        return [p for g in geom.geoms for p in _polygon_parts(g)]
    return []


def _coords(ring) -> list[list[float]]:
    return [[round(float(x), 1), round(float(y), 1)] for x, y in ring.coords]


def valid_geometry(outer: np.ndarray, holes: list[np.ndarray] = ()) -> dict[str, Any] | None:
    """GeoJSON geometry (Polygon, or MultiPolygon when the shape falls apart) of one shell
    with its holes, all (K, 2) level-0 px; None when nothing with an area is left."""
    if len(outer) < 3:
        return None
    shell = np.asarray(outer, np.float64)
    inner = [np.asarray(h, np.float64) for h in holes if len(h) >= 3]
    poly = shapely.Polygon(shell, inner)
    if not poly.is_valid:
        poly = shapely.make_valid(poly, method="structure", keep_collapsed=False)
    poly = shapely.set_precision(poly, GRID_PX)  # snapping keeps the result valid
    parts = [shapely.orient_polygons(p) for p in _polygon_parts(poly)]
    if not parts:
        return None
    rings = [[_coords(p.exterior)] + [_coords(r) for r in p.interiors] for p in parts]
    if len(rings) == 1:
        return {"type": "Polygon", "coordinates": rings[0]}
    return {"type": "MultiPolygon", "coordinates": rings}
