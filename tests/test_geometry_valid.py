"""Every polygon pathgen writes is valid for shapely/GEOS and still QuPath-shaped GeoJSON.

Traced raster outlines touch themselves (tissue joined at a pixel corner, simplified rings
crossing their holes); geopandas and QuPath users meet those first. Checked on hand-made
masks that are known to produce such rings and on a generated demo cohort's outputs.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from pathgen.config import validate_config
from pathgen.config.tiling import TilingConfig
from pathgen.demo.classes import TISSUE_CLASSES
from pathgen.demo.generate import generate_demo, rasterize_regions
from pathgen.demo.synth import LR, generate_slide
from pathgen.paths import Layout
from pathgen.tiling import tile_slide
from pathgen.tiling.geojson import contours_feature_collection
from pathgen.tiling.polygons import valid_geometry
from pathgen.tiling.segment import regions_from_mask


def assert_qupath_valid(fc: dict) -> list:
    """QuPath annotation shape + shapely validity, on the JSON as a reader sees it."""
    fc = json.loads(json.dumps(fc))
    assert fc["type"] == "FeatureCollection"
    geoms = []
    for feat in fc["features"]:
        assert feat["type"] == "Feature" and feat["properties"]["objectType"] == "annotation"
        assert feat["properties"]["classification"]["name"]
        geom = feat["geometry"]
        assert geom["type"] in ("Polygon", "MultiPolygon")
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        for rings in polys:
            assert all(r[0] == r[-1] and len(r) >= 4 for r in rings)
        g = shape(geom)
        assert g.is_valid, (feat.get("id"), shapely.is_valid_reason(g))
        assert g.area > 0
        geoms.append(g)
    return geoms


def corner_mask() -> np.ndarray:
    """Three squares joined at pixel corners (one 8-connected piece) with a hole."""
    m = np.zeros((40, 40), np.uint8)
    m[5:15, 5:15] = m[15:25, 15:25] = m[25:35, 5:15] = 1
    m[19:22, 19:22] = 0
    return m


def test_self_touching_tissue_outline_is_repaired():
    regions = regions_from_mask(corner_mask(), (4.0, 4.0), 2.0)
    assert len(regions) == 1 and len(regions[0].holes) == 1
    assert not shapely.Polygon(regions[0].outer, regions[0].holes).is_valid  # the raw trace
    (geom,) = assert_qupath_valid(contours_feature_collection(regions, "s"))
    assert geom.geom_type == "MultiPolygon" and len(geom.geoms) == 3
    assert sum(len(p.interiors) for p in geom.geoms) == 1  # the hole kept as an interior
    assert all(p.exterior.is_ccw and not any(r.is_ccw for r in p.interiors) for p in geom.geoms)


@pytest.mark.parametrize("ring, holes, kind", [
    ([(0, 0), (10, 10), (10, 0), (0, 10)], [], "MultiPolygon"),                 # bow-tie
    ([(0, 0), (20, 0), (20, 20), (0, 20)], [[(5, 5), (25, 5), (25, 15), (5, 15)]], "Polygon"),  # hole crosses shell
    ([(0, 0), (10, 0), (20, 0)], [], None),                                     # no area
])
def test_valid_geometry_cases(ring, holes, kind):
    geom = valid_geometry(np.array(ring, float), [np.array(h, float) for h in holes])
    if kind is None:
        assert geom is None
        return
    assert geom["type"] == kind and shape(geom).is_valid


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("geom")
    cfg = validate_config({"results_dir": str(d / "res"),
                           "demo": {"out_dir": str(d / "demo"), "n_slides": 3, "width_px": 1536,
                                    "height_px": 1024}})
    ids = generate_demo(cfg.demo)
    return cfg, ids, d


def demo_label_map(cfg, sid: str) -> tuple[dict, np.ndarray]:
    """A demo slide's written regions GeoJSON and its drawn label map (redrawn: deterministic)."""
    gj = json.loads(Layout(cfg).demo_regions(sid).read_text())
    d = cfg.demo
    slide = generate_slide(d.seed, int(sid[-3:]), gj["properties"]["label"] == "tumor", d.width_px,
                           d.height_px, d.mpp)
    return gj, slide.labels


def test_demo_region_polygons_valid(demo):
    cfg, ids, _ = demo
    n = 0
    for sid in ids:
        gj, labels = demo_label_map(cfg, sid)
        n += len(assert_qupath_valid(gj))
        back = rasterize_regions(gj, cfg.demo.width_px, cfg.demo.height_px, LR)
        assert (back == labels).mean() > 0.95  # repaired polygons still draw the label map
    assert n > 30


def test_demo_raw_rings_were_invalid(demo):
    """Guard: the cohort does hold outlines that are invalid before repair (4-6 % of them)."""
    cfg, ids, _ = demo
    bad = 0
    for sid in ids:
        _, labels = demo_label_map(cfg, sid)
        for idx in range(1, len(TISSUE_CLASSES) + 1):
            contours, _ = cv2.findContours((labels == idx).astype(np.uint8), cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_SIMPLE)
            rings = [cv2.approxPolyDP(c, 0.7, True).reshape(-1, 2) for c in contours]
            bad += sum(not shapely.Polygon(r).is_valid for r in rings if len(r) >= 3)
    assert bad > 0


def test_demo_tissue_polygons_valid(demo):
    cfg, ids, d = demo
    lay, n = Layout(cfg), 0
    for sid in ids:
        out = d / "tiles" / f"{sid}.geojson"
        tile_slide(lay.demo_slide(sid), d / "tiles" / f"{sid}.h5", TilingConfig(), geojson=out)
        n += len(assert_qupath_valid(json.loads(out.read_text())))
    assert n >= len(ids)
