"""Tiling on real Aperio SVS files: segmentation area, outputs, edge cases, CLI."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest
from PIL import Image

from pathgen.config.tiling import SegmentationConfig, TilingConfig
from pathgen.demo.aperio import write_aperio_svs
from pathgen.tiling import read_coords, tile_slide
from pathgen.tiling import segment as seg
from pathgen.tiling.h5io import CLAM_ATTRS, PATHGEN_ATTRS, TRIDENT_ATTRS, coords_attrs, write_coords
from pathgen.wsi import SlideError, open_slide

BG, PINK, PURPLE = (238, 236, 240), (205, 110, 170), (150, 80, 160)


def tissue_image(h=3000, w=4000, s=1.0):
    """Disc with a hole + rectangle + a speck; ``s`` scales geometry (for other mpps)."""
    img = np.full((int(h * s), int(w * s), 3), BG, np.uint8)
    cv2.circle(img, (int(1500 * s), int(1500 * s)), int(900 * s), PINK, -1)
    cv2.circle(img, (int(1500 * s), int(1500 * s)), int(250 * s), BG, -1)  # hole: 0.049 mm² at 0.5
    cv2.rectangle(img, (int(3000 * s), int(500 * s)), (int(3800 * s) - 1, int(2600 * s) - 1), PURPLE, -1)
    cv2.circle(img, (int(300 * s), int(2700 * s)), int(30 * s), PURPLE, -1)  # speck: ~700 µm²
    return img


def true_area_um2(mpp=0.5, s=1.0):
    px = np.pi * ((900 * s) ** 2 - (250 * s) ** 2) + (800 * s) * (2100 * s)
    return px * mpp * mpp


@pytest.fixture(scope="module")
def svs(tmp_path_factory):
    path = tmp_path_factory.mktemp("slides") / "case1.svs"
    write_aperio_svs(path, tissue_image(), mpp=0.5)
    return path


# 256 µm at 0.5 µm/px = 512 px at level 0 of these 0.5 µm/px slides (the built-in default is
# the pathgen geometry, 672 px at 0.25 µm/px)
GEOM_256UM = TilingConfig(patch_size_um=256, target_mpp=0.5)


@pytest.fixture(scope="module")
def tiled(svs, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiles")
    res = tile_slide(svs, out / "coords" / "case1.h5", GEOM_256UM, qc=out / "qc.jpg",
                     geojson=out / "t.geojson", slide_id="case1")
    return res, out


def test_segmentation_area_and_regions(svs):
    slide = open_slide(svs)
    tm = seg.segment_tissue(slide, svs, 0.5, SegmentationConfig())
    assert tm.level > 0  # a pyramid level, not level 0
    assert tm.tissue_area_um2 == pytest.approx(true_area_um2(), rel=0.03)
    assert len(tm.regions) == 2  # speck (< min_tissue_area_um2) dropped
    disc = max(tm.regions, key=lambda r: len(r.holes))
    assert len(disc.holes) == 1
    # area filters are physical: a smaller hole limit keeps... a larger tissue limit drops all
    tm2 = seg.segment_tissue(slide, svs, 0.5, SegmentationConfig(min_tissue_area_um2=5e6))
    assert tm2.regions == [] and tm2.mask.sum() == 0
    tm3 = seg.segment_tissue(slide, svs, 0.5, SegmentationConfig(min_hole_area_um2=1e6))
    assert all(not r.holes for r in tm3.regions)  # hole (0.049 mm²) filled
    assert tm3.tissue_area_um2 > tm.tissue_area_um2 * 1.03
    slide.close()


def test_same_tissue_same_area_on_another_scanner(tmp_path):
    """The same physical tissue scanned at 0.25 µm/px gives the same µm² area and regions."""
    path = tmp_path / "hi.svs"
    write_aperio_svs(path, tissue_image(s=2.0), mpp=0.25)
    slide = open_slide(path)
    tm = seg.segment_tissue(slide, path, 0.25, SegmentationConfig())
    assert tm.tissue_area_um2 == pytest.approx(true_area_um2(0.25, 2.0), rel=0.03)
    assert len(tm.regions) == 2
    slide.close()


def test_segmentation_never_reads_level0(svs, monkeypatch):
    levels, sizes = [], []
    real = seg.read_rgb

    def spy(slide, path, loc, level, size):
        levels.append(level)
        sizes.append(size)
        return real(slide, path, loc, level, size)

    monkeypatch.setattr(seg, "read_rgb", spy)
    monkeypatch.setattr(seg, "READ_BLOCK_PX", 128)  # force several blocks
    slide = open_slide(svs)
    tm = seg.segment_tissue(slide, svs, 0.5, SegmentationConfig())
    slide.close()
    assert 0 not in levels and len(levels) > 1
    assert max(max(s) for s in sizes) <= 129
    assert tm.tissue_area_um2 == pytest.approx(true_area_um2(), rel=0.03)


def test_coords_h5_schema(tiled):
    res, out = tiled
    path = out / "coords" / "case1.h5"
    coords, attrs = read_coords(path)
    assert res.n_patches == len(coords) > 0
    for key in CLAM_ATTRS + TRIDENT_ATTRS + PATHGEN_ATTRS:
        assert key in attrs, key
    with h5py.File(path) as f:
        ds = f["coords"]
        assert ds.dtype == np.int64 and ds.shape == (len(coords), 2)
        assert ds.chunks == (min(len(coords), 4096), 2)
    assert attrs["patch_size"] == 512 and attrs["patch_size_level0"] == 512
    assert attrs["mpp"] == 0.5 and attrs["mpp_source"] == "openslide.mpp-x"
    assert attrs["level0_width"] == 4000 and attrs["level0_height"] == 3000
    assert attrs["level0_magnification"] == pytest.approx(20.0)
    assert attrs["name"] == "case1" and attrs["overlap"] == 0 and attrs["patch_level"] == 0
    assert list(attrs["level_dim"]) == [4000, 3000]
    # every patch inside the slide, on the lattice, and on tissue
    assert (coords >= 0).all() and (coords[:, 0] + 512 <= 4000).all() and (coords[:, 1] + 512 <= 3000).all()
    assert len(np.unique(coords, axis=0)) == len(coords)
    img = tissue_image()
    for x, y in coords:
        sat = cv2.cvtColor(img[y:y + 512, x:x + 512], cv2.COLOR_RGB2HSV)[..., 1]
        assert (sat > 40).mean() >= 0.45


def test_geojson_and_qc(tiled):
    res, out = tiled
    fc = json.loads((out / "t.geojson").read_text())
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 2
    for feat in fc["features"]:
        assert feat["properties"]["objectType"] == "annotation"
        assert feat["properties"]["classification"]["name"] == "Tissue"
        assert feat["geometry"]["type"] == "Polygon"
        for ring in feat["geometry"]["coordinates"]:
            assert ring[0] == ring[-1] and len(ring) >= 4
    rings = max((f["geometry"]["coordinates"] for f in fc["features"]), key=len)
    assert len(rings) == 2  # outer + hole
    hole = np.array(rings[1])
    assert np.hypot(hole[:, 0] - 1500, hole[:, 1] - 1500).mean() == pytest.approx(250, rel=0.08)
    im = Image.open(out / "qc.jpg")
    assert im.format == "JPEG" and max(im.size) <= 2048
    arr = np.asarray(im)
    assert ((arr[..., 1] > 150) & (arr[..., 0] < 80)).any()  # green tissue outline drawn


def test_blank_slide_gives_empty_file(tmp_path):
    path = tmp_path / "blank.svs"
    img = np.full((2000, 2500, 3), BG, np.uint8)
    img += np.random.default_rng(0).integers(0, 6, img.shape, dtype=np.uint8)  # scanner noise
    write_aperio_svs(path, img, mpp=0.5)
    res = tile_slide(path, tmp_path / "b.h5", GEOM_256UM, qc=tmp_path / "b.jpg",
                     geojson=tmp_path / "b.geojson")
    coords, attrs = read_coords(tmp_path / "b.h5")
    assert res.n_patches == 0 and coords.shape == (0, 2) and coords.dtype == np.int64
    assert attrs["patch_size_level0"] == 512
    assert json.loads((tmp_path / "b.geojson").read_text())["features"] == []
    assert (tmp_path / "b.jpg").stat().st_size > 0


def test_tiny_slide_smaller_than_patch(tmp_path):
    path = tmp_path / "tiny.svs"
    write_aperio_svs(path, np.full((200, 300, 3), PINK, np.uint8), mpp=0.5)
    res = tile_slide(path, tmp_path / "t.h5", qc=tmp_path / "t.jpg")
    coords, _ = read_coords(tmp_path / "t.h5")
    assert res.n_patches == 0 and coords.shape == (0, 2)


def test_preset_and_mpp_override(svs, tmp_path):
    cfg = TilingConfig(preset="pathgen")
    res = tile_slide(svs, tmp_path / "p.h5", cfg, mpp_override=0.25, mpp_override_source="test")
    _, attrs = read_coords(tmp_path / "p.h5")
    assert attrs["patch_size"] == 672 and attrs["patch_size_level0"] == 672
    assert attrs["target_mpp"] == 0.25 and attrs["mpp_source"] == "test" and res.mpp == 0.25
    # same preset on the true 0.5 µm/px: same µm, half the level-0 px
    tile_slide(svs, tmp_path / "q.h5", cfg)
    _, attrs = read_coords(tmp_path / "q.h5")
    assert attrs["patch_size_level0"] == 336 and attrs["patch_size_um"] == pytest.approx(168.0)


def test_write_coords_chunks_in_blocks(tmp_path):
    attrs = coords_attrs(name="x", save_dir=tmp_path, mpp=0.5, mpp_source="t", target_mpp=0.5,
                         patch_size_um=256, patch_size=512, patch_size_level0=512, level0_dims=(10, 10))
    c = np.arange(20000, dtype=np.int64).reshape(-1, 2)
    write_coords(tmp_path / "a.h5", c, attrs)
    with h5py.File(tmp_path / "a.h5") as f:
        assert f["coords"].chunks == (4096, 2)
    np.testing.assert_array_equal(read_coords(tmp_path / "a.h5")[0], c)
    with pytest.raises(ValueError, match="missing"):
        write_coords(tmp_path / "b.h5", c, {"patch_size": 1})
    assert not (tmp_path / "b.h5").exists()


def _tile_cli(argv):
    """Run `pathgen tile` through its own parser (importing every stage is slow)."""
    import argparse

    from pathgen.tiling import cli

    parser = argparse.ArgumentParser(prog="pathgen")
    cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli(svs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # built-in config defaults, not the repo's config.yaml
    main = _tile_cli
    rc = main(["tile", str(svs), "--out", str(tmp_path / "c.h5"), "--qc", str(tmp_path / "q.jpg"),
               "--geojson", str(tmp_path / "g.geojson"), "--mpp", "0.5",
               "--set", "tiling.tissue_threshold=0.9", "--set", "demo.enabled=true"])
    assert rc == 0
    coords, attrs = read_coords(tmp_path / "c.h5")
    assert attrs["tissue_threshold"] == 0.9 and attrs["mpp_source"] == "--mpp" and len(coords) > 0
    assert (tmp_path / "q.jpg").exists() and (tmp_path / "g.geojson").exists()
    bad = tmp_path / "broken.svs"
    bad.write_bytes(svs.read_bytes()[:5000])
    assert main(["tile", str(bad), "--out", str(tmp_path / "x.h5")]) == 1
    assert "broken.svs" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_corrupt_file_raises_slide_error(tmp_path):
    bad = tmp_path / "img.svs"
    Image.new("RGB", (64, 64)).save(bad, format="PNG")
    with pytest.raises(SlideError, match="img.svs"):
        tile_slide(bad, tmp_path / "x.h5")


def test_fixed_threshold_and_otsu_floor():
    img = tissue_image(s=0.1)
    # pale tissue (saturation ~ 40) is found by a low fixed threshold, not by a high one
    pale = np.full((300, 400, 3), BG, np.uint8)
    pale[50:250, 50:350] = (215, 190, 205)
    lo, thr = seg.mask_from_rgb(pale, 8.0, SegmentationConfig(saturation_threshold=20))
    hi, _ = seg.mask_from_rgb(pale, 8.0, SegmentationConfig(saturation_threshold=60))
    assert thr == 20 and lo.mean() > 0.45 and hi.sum() == 0
    _, thr = seg.mask_from_rgb(np.full((100, 100, 3), BG, np.uint8), 8.0, SegmentationConfig())
    assert thr >= 15  # Otsu floor applied on a blank image
    m, thr = seg.mask_from_rgb(img, 8.0, SegmentationConfig())
    assert 15 <= thr < 100 and m.any()


def test_mpp_override_sources(tmp_path):
    from pathgen.config import validate_config
    from pathgen.slide_tables import SlideRecord
    from pathgen.tiling import mpp_overrides_for_run

    (tmp_path / "o.csv").write_text("slide_id,mpp\na,0.26\n")
    (tmp_path / "s.csv").write_text("slide_id,path,mpp\na,a.svs,0.3\nb,b.svs,0.4\nc,c.svs,\n")
    cfg = validate_config({"demo": {"enabled": False},
                           "slides": {"sample_sheet": str(tmp_path / "s.csv"),
                                      "mpp_overrides": str(tmp_path / "o.csv")}})
    recs = [SlideRecord("a", tmp_path / "a.svs", 0.3), SlideRecord("b", tmp_path / "b.svs", 0.4),
            SlideRecord("c", tmp_path / "c.svs")]
    got = mpp_overrides_for_run(cfg, recs)
    assert got["a"][0] == 0.26 and "mpp_overrides" in got["a"][1]  # table beats sample sheet
    assert got["b"][0] == 0.4 and "sample sheet" in got["b"][1]
    assert got["c"] == (None, "")
    # demo records carry mpp but the SVS header is the source of truth there
    demo = validate_config({})
    assert mpp_overrides_for_run(demo, [SlideRecord("demo_000", tmp_path / "x.svs", 0.5)]) == \
        {"demo_000": (None, "")}
