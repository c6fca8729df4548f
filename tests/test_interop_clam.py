"""CLAM reads pathgen's exports as its own (reader side written from CLAM's documented contract).

CLAM's contract, as its README and formats describe it (no CLAM code here):
- patch extraction: for each row of ``patches/<slide>.h5`` ``coords``, OpenSlide
  ``read_region(coord, patch_level, (patch_size, patch_size))``, converted to RGB, then resized
  to the encoder input (``--target_patch_size``);
- MIL: ``<data_root_dir>/pt_files/<slide_id>.pt`` is ``torch.load``-ed as an (N, D) tensor
  (default), or ``h5_files/<slide_id>.h5`` gives ``features`` and ``coords`` (``use_h5``).
The slides are demo Aperio SVS files whose mpp differs from the target mpp.
"""

from __future__ import annotations

import logging

import h5py
import numpy as np
import openslide
import pytest
import torch
from PIL import Image

from pathgen.cli import main
from pathgen.config.features import FeaturesConfig
from pathgen.config.tiling import TilingConfig
from pathgen.demo.aperio import write_aperio_svs
from pathgen.demo.synth import generate_slide
from pathgen.export.clam import export_clam
from pathgen.tiling.conventions import convention_conflicts
from pathgen.features.extract import extract_features
from pathgen.tiling import read_coords, tile_slide
from pathgen.wsi import patch_reader

OUT_PX = 224


def demo_svs(path, mpp, width, height, levels=None):
    """A pathgen demo slide (synthetic H&E) written as a real Aperio SVS."""
    img = generate_slide(7, 0, True, width, height, mpp).image
    write_aperio_svs(path, img, mpp=mpp, levels=levels)
    return path


def clam_read_patches(slide_path, coords_h5, out_px=OUT_PX) -> tuple[np.ndarray, float]:
    """CLAM-style reader: ``patch_size`` px at ``patch_level``, RGB, resized; also returns the
    µm side it covered (patch_size x the level's real downsample x level-0 mpp)."""
    with h5py.File(coords_h5, "r") as f:
        ds = f["coords"]
        level, size = int(ds.attrs["patch_level"]), int(ds.attrs["patch_size"])
        xy = ds[()]
    slide = openslide.OpenSlide(str(slide_path))
    try:
        crops = [np.asarray(slide.read_region((int(x), int(y)), level, (size, size)).convert("RGB")
                            .resize((out_px, out_px), Image.BICUBIC)) for x, y in xy]
        um = size * slide.level_downsamples[level] * float(slide.properties["openslide.mpp-x"])
    finally:
        slide.close()
    return np.stack(crops), um


def pathgen_patches(slide_path, coords_h5, out_px=OUT_PX) -> np.ndarray:
    coords, attrs = read_coords(coords_h5)
    with patch_reader(slide_path) as reader:
        return reader.read_patches(coords, attrs["patch_size_level0"], out_px)


@pytest.fixture(scope="module")
def upsampled(tmp_path_factory):
    """0.5 µm/px slide tiled with the PathGen preset (672 px at 0.25 µm/px = 168 µm): the issue's case."""
    d = tmp_path_factory.mktemp("clam")
    svs = demo_svs(d / "slideA.svs", 0.5, 2048, 1536)
    tile_slide(svs, d / "coords" / "slideA.h5", TilingConfig(preset="pathgen"))
    return svs, d


def test_main_coords_file_warns_and_says_why(upsampled, caplog):
    svs, d = upsampled
    with caplog.at_level(logging.WARNING):
        tile_slide(svs, d / "again.h5", TilingConfig(preset="pathgen"))
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "CLAM reads patch_size=672 px at patch_level=0 = 336.0 µm, not the 168.0 µm" in msg
    assert "pathgen export clam" in msg
    _, attrs = read_coords(d / "again.h5")
    assert attrs["clam_compatible"] == 0 and len(convention_conflicts(attrs)) == 1


def test_clam_export_covers_the_same_field(upsampled):
    svs, d = upsampled
    rows = export_clam(d / "clamdir", coords=d / "coords")
    assert [(r["slide_id"], r["patch_level"], r["patch_size"]) for r in rows] == [("slideA", 0, 336)]
    exported = d / "clamdir" / "patches" / "slideA.h5"
    ours = pathgen_patches(svs, d / "coords" / "slideA.h5")
    assert len(ours) >= 8
    crops, um = clam_read_patches(svs, exported)
    assert um == pytest.approx(168.0)
    assert np.abs(crops.astype(float) - ours).mean() < 4  # same tissue (resampling noise only)
    # the un-exported file is what CLAM got wrong: twice the field, a different picture
    wrong, wrong_um = clam_read_patches(svs, d / "coords" / "slideA.h5")
    assert wrong_um == pytest.approx(336.0)
    assert np.abs(wrong.astype(float) - ours).mean() > 20
    with h5py.File(exported, "r") as f:
        a = f["coords"].attrs
        assert a["target_patch_size"] == 672 and list(a["downsample"]) == [1.0, 1.0]
        assert "target_magnification" not in a  # a TRIDENT reader fails instead of misreading
        assert convention_conflicts(dict(a)) == []


@pytest.mark.parametrize("levels, target_mpp, want_level, want_px", [
    ([1, 2, 8], 0.5, 1, 256),    # a level at the target: the main file is already CLAM-correct
    (None, 1.0, 1, 128),         # default 1, 4: level 1 (1 µm/px) at a 1 µm/px target
    (None, 0.5, 0, 512),         # no level at 0.5 µm/px: level 0, patch_size_level0 px
])
def test_best_pyramid_level(tmp_path, levels, target_mpp, want_level, want_px):
    svs = demo_svs(tmp_path / "hi.svs", 0.25, 2048, 1536, levels=levels)
    cfg = TilingConfig(patch_size_um=128, target_mpp=target_mpp, tissue_threshold=0.3)
    tile_slide(svs, tmp_path / "coords" / "hi.h5", cfg)
    _, attrs = read_coords(tmp_path / "coords" / "hi.h5")
    agree = want_px == attrs["patch_size"]  # one level serves both peers' meaning of patch_size
    assert attrs["patch_level"] == (want_level if agree else 0) and attrs["clam_compatible"] == int(agree)
    rows = export_clam(tmp_path / "clam", coords=tmp_path / "coords")
    assert (rows[0]["patch_level"], rows[0]["patch_size"]) == (want_level, want_px)
    crops, um = clam_read_patches(svs, tmp_path / "clam" / "patches" / "hi.h5", 128)
    assert um == pytest.approx(128.0)
    ours = pathgen_patches(svs, tmp_path / "coords" / "hi.h5", 128)
    assert len(ours) and np.abs(crops.astype(float) - ours).mean() < 6


def clam_mil_load(data_root, slide_id, use_h5=False):
    """CLAM-style MIL dataset item: pt_files/<id>.pt by default, h5_files/<id>.h5 with use_h5."""
    if not use_h5:
        return torch.load(data_root / "pt_files" / f"{slide_id}.pt"), None
    with h5py.File(data_root / "h5_files" / f"{slide_id}.h5", "r") as f:
        return torch.from_numpy(f["features"][:]), f["coords"][:]


def test_mil_loader_finds_features(upsampled, tmp_path):
    svs, d = upsampled
    feats = tmp_path / "features_tiny-demo"
    extract_features(svs, d / "coords" / "slideA.h5", feats / "slideA.h5", "tiny-demo",
                     FeaturesConfig(batch_size=8, num_workers=0, device="cpu", dtype="float16"))
    assert main(["export", "clam", "--features", str(feats), "--out", str(tmp_path / "clam")]) == 0
    n = len(read_coords(d / "coords" / "slideA.h5")[0])
    bag, _ = clam_mil_load(tmp_path / "clam", "slideA")
    assert isinstance(bag, torch.Tensor) and bag.shape == (n, 128) and bag.dtype == torch.float32
    bag_h5, coords = clam_mil_load(tmp_path / "clam", "slideA", use_h5=True)
    assert torch.equal(bag, bag_h5) and coords.shape == (n, 2)
    with h5py.File(tmp_path / "clam" / "h5_files" / "slideA.h5", "r") as f:
        assert f["coords"].attrs["patch_size"] == 336 and f.attrs["encoder"] == "tiny-demo"


def test_export_errors_name_the_input(tmp_path, capsys):
    assert main(["export", "clam", "--coords", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "coords " + str(tmp_path / "nope") + " does not exist" in capsys.readouterr().err


def test_check_command(upsampled, capsys):
    svs, d = upsampled
    export_clam(d / "clam2", coords=d / "coords")
    assert main(["export", "check", str(d / "coords" / "slideA.h5")]) == 1
    assert "CLAM reads patch_size=672" in capsys.readouterr().out
    assert main(["export", "check", str(d / "clam2" / "patches" / "slideA.h5")]) == 0
    assert "agree" in capsys.readouterr().out
