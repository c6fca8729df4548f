"""Slide opening errors and the mpp resolution order (pathgen.wsi)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from pathgen.demo.aperio import write_aperio_svs
from pathgen.wsi import MppError, SlideError, open_slide, resolve_mpp
from pathgen.wsi.mpp import mpp_from_properties


def _svs(path, mpp=0.5, h=600, w=800):
    img = np.full((h, w, 3), 235, np.uint8)
    img[100:400, 200:600] = (190, 100, 160)
    write_aperio_svs(path, img, mpp=mpp)
    return path


# -- resolution order on property dicts -------------------------------------------------------
@pytest.mark.parametrize("props, expected, source", [
    ({"openslide.mpp-x": "0.2527", "aperio.MPP": "0.5", "aperio.AppMag": "20"}, 0.2527, "openslide.mpp-x"),
    ({"aperio.MPP": "0.4990", "aperio.AppMag": "40"}, 0.499, "aperio.MPP"),
    ({"openslide.mirax.MPP": "0.243"}, 0.243, "openslide.mirax.MPP"),
    ({"philips.DICOM_PIXEL_SPACING": '"0.000243" "0.000243"'}, 0.243, "philips.DICOM_PIXEL_SPACING"),
    ({"tiff.XResolution": "40000", "tiff.ResolutionUnit": "centimeter"}, 0.25, "tiff.XResolution"),
    ({"tiff.XResolution": "50800", "tiff.ResolutionUnit": "inch"}, 0.5, "tiff.XResolution"),
    ({"openslide.objective-power": "40"}, 0.25, "objective power"),
    ({"aperio.AppMag": "20"}, 0.5, "objective power"),
    # 72 dpi is an image-editor default, not a scan resolution: skipped, objective power used
    ({"tiff.XResolution": "72", "tiff.ResolutionUnit": "inch", "aperio.AppMag": "10"}, 1.0, "objective power"),
])
def test_mpp_order_from_properties(props, expected, source):
    mpp, src = mpp_from_properties(props)
    assert mpp == pytest.approx(expected, rel=1e-6)
    assert src.startswith(source)


def test_override_wins_then_default_then_error(tmp_path):
    props = {"openslide.mpp-x": "0.25"}
    assert resolve_mpp(props, "a.svs", override=0.5, override_source="slides.mpp_overrides") == \
        (0.5, "slides.mpp_overrides")
    assert resolve_mpp(props, "a.svs", default=1.0) == (0.25, "openslide.mpp-x")
    assert resolve_mpp({}, "a.svs", default=1.0) == (1.0, "slides.default_mpp")
    with pytest.raises(MppError) as exc:
        resolve_mpp({"tiff.XResolution": "72", "tiff.ResolutionUnit": "inch"}, tmp_path / "case_7.tif")
    msg = str(exc.value)
    assert "case_7.tif" in msg and "slides.mpp_overrides" in msg and "slide_id,mpp" in msg
    assert "case_7,0.25" in msg and "slides.default_mpp" in msg and "--mpp" in msg
    with pytest.raises(MppError, match="positive"):
        resolve_mpp(props, "a.svs", override=-1.0)


def test_real_svs_mpp_and_override(tmp_path):
    path = _svs(tmp_path / "s.svs", mpp=0.2525)
    slide = open_slide(path)
    assert slide.properties["aperio.MPP"].startswith("0.2525")
    mpp, src = resolve_mpp(slide, path)
    assert mpp == pytest.approx(0.2525) and src == "openslide.mpp-x"
    assert resolve_mpp(slide, path, override=0.5)[0] == 0.5
    # vendor key alone (OpenSlide's mpp-x removed) still resolves
    props = {k: v for k, v in slide.properties.items() if not k.startswith("openslide.mpp")}
    assert resolve_mpp(props, path) == (pytest.approx(0.2525), "aperio.MPP")
    slide.close()


def test_generic_tiff_without_metadata(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.full((512, 512, 3), 200, np.uint8), tile=(256, 256), photometric="rgb")
    slide = open_slide(path)
    with pytest.raises(MppError, match="plain.tif"):
        resolve_mpp(slide, path)
    assert resolve_mpp(slide, path, default=0.5) == (0.5, "slides.default_mpp")


# -- unreadable files -----------------------------------------------------------------------
def test_missing_empty_and_non_slide(tmp_path):
    with pytest.raises(SlideError, match="does not exist") as exc:
        open_slide(tmp_path / "nope.svs")
    assert str(tmp_path / "nope.svs") in str(exc.value)
    (tmp_path / "empty.svs").write_bytes(b"")
    with pytest.raises(SlideError, match="empty"):
        open_slide(tmp_path / "empty.svs")
    (tmp_path / "notes.svs").write_text("this is not a slide\n")
    with pytest.raises(SlideError, match="not a format OpenSlide can read") as exc:
        open_slide(tmp_path / "notes.svs")
    assert "notes.svs" in str(exc.value)


@pytest.mark.parametrize("keep", [0.95, 0.5, 0.1])
def test_truncated_svs(tmp_path, keep):
    path = _svs(tmp_path / "full.svs")
    data = path.read_bytes()
    bad = tmp_path / "cut.svs"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(SlideError) as exc:
        open_slide(bad)
    assert str(bad) in str(exc.value)
    assert "truncated" in str(exc.value)


def test_corrupt_tile_data_caught_by_probe(tmp_path):
    path = _svs(tmp_path / "c.svs")
    slide = open_slide(path)
    # overwrite the last tile of the last level (the probe's pixel) with garbage
    with tifffile.TiffFile(path) as tf:
        page = tf.pages[len(tf.pages) - 1]
        off, n = page.dataoffsets[-1], page.databytecounts[-1]
    slide.close()
    raw = bytearray(path.read_bytes())
    raw[off:off + n] = b"\x00" * n
    path.write_bytes(bytes(raw))
    with pytest.raises(SlideError, match="cannot be decoded") as exc:
        open_slide(path)
    assert str(path) in str(exc.value)
