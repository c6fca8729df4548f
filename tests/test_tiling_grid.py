"""Pure grid math: candidate cells, exact tissue fractions, thresholds, slide edges."""

from __future__ import annotations

import numpy as np
import pytest

from pathgen.tiling import grid


def test_cells_fully_inside_non_multiple_slide():
    # 1000 x 700 slide, 256 px patches: 3 x 2 cells fit (768 <= 1000, 512 <= 700), no more
    cells = grid.candidate_cells([(0, 0, 1000, 700)], (0, 0), 256, (1000, 700))
    assert len(cells) == 6
    assert (cells[:, 0] + 256 <= 1000).all() and (cells[:, 1] + 256 <= 700).all()
    # row-major order: y first, then x
    assert cells.tolist() == [[0, 0], [256, 0], [512, 0], [0, 256], [256, 256], [512, 256]]


def test_tissue_anchor_offsets_grid_and_edge_cells_dropped():
    # tissue at the right edge: the cell that would cross the border is not a candidate
    bb = [(900.0, 100.0, 1000.0, 300.0)]
    o = grid.grid_origin(bb, "tissue")
    assert o == (900, 100)
    assert len(grid.candidate_cells(bb, o, 256, (1000, 700))) == 0  # 900 + 256 > 1000
    cells = grid.candidate_cells(bb, (0, 0), 256, (1000, 700))
    assert (cells[:, 0] + 256 <= 1000).all()
    assert grid.grid_origin(bb, "slide") == (0, 0)


def test_slide_smaller_than_patch_gives_nothing():
    assert grid.candidate_cells([(0, 0, 300, 200)], (0, 0), 512, (300, 200)).shape == (0, 2)
    coords, frac = grid.select_patches(np.ones((10, 15), np.uint8), (20.0, 20.0),
                                       [(0, 0, 300, 200)], (300, 200), 512, 0.5)
    assert coords.shape == (0, 2) and coords.dtype == np.int64 and len(frac) == 0


def test_cells_from_two_regions_do_not_overlap():
    bbs = [(0, 0, 600, 600), (500, 500, 1200, 1100)]
    cells = grid.candidate_cells(bbs, grid.grid_origin(bbs, "tissue"), 256, (2000, 2000))
    assert len(np.unique(cells, axis=0)) == len(cells)
    assert ((cells % 256) == 0).all()  # one lattice


def _brute_fraction(mask, scale, x, y, size, k=8):
    """Reference: upsample the mask so each level-0 px is exact (scale is integral here)."""
    fx = int(scale[0])
    big = np.kron(mask, np.ones((fx, fx), np.uint8))
    return big[y:y + size, x:x + size].mean()


def test_tissue_fraction_exact_at_fractional_positions():
    rng = np.random.default_rng(0)
    mask = (rng.random((40, 50)) > 0.5).astype(np.uint8)
    coords = np.array([[3, 5], [37, 61], [100, 13], [250, 230]], np.int64)
    fr = grid.tissue_fractions(mask, (8.0, 8.0), coords, 60)
    ref = [_brute_fraction(mask, (8, 8), x, y, 60) for x, y in coords]
    np.testing.assert_allclose(fr, ref, atol=1e-12)


def test_threshold_behaviour_half_tissue():
    # tissue covers x < 768 of a 1024 x 1024 slide (mask px = 64 level-0 px)
    mask = np.zeros((16, 16), np.uint8)
    mask[:, :12] = 1
    scale, bb, dims = (64.0, 64.0), [(0, 0, 1024, 1024)], (1024, 1024)
    coords, frac = grid.select_patches(mask, scale, bb, dims, 256, 0.5, "slide")
    assert sorted(set(coords[:, 0].tolist())) == [0, 256, 512]  # x=768 column is 0 % tissue
    # 384 px grid: column x=384 spans 384..768 (100 %), x=768 would cross the slide edge
    coords, frac = grid.select_patches(mask, scale, bb, dims, 384, 0.5, "slide")
    assert sorted(set(coords[:, 0].tolist())) == [0, 384]
    # 512 px grid: the x=512 patch (512..1024) is exactly 50 % tissue
    c, f = grid.select_patches(mask, scale, bb, dims, 512, 0.5, "slide")
    assert [512, 0] in c.tolist() and f[c[:, 0] == 512][0] == pytest.approx(0.5)
    c, _ = grid.select_patches(mask, scale, bb, dims, 512, 0.51, "slide")
    assert [512, 0] not in c.tolist() and [0, 0] in c.tolist()
    # threshold 1.0 keeps only full-tissue patches; 0 keeps every candidate
    c, f = grid.select_patches(mask, scale, bb, dims, 256, 1.0, "slide")
    assert (f == 1.0).all() and len(c) == 12
    c, _ = grid.select_patches(mask, scale, bb, dims, 256, 0.0, "slide")
    assert len(c) == 16


def test_holes_excluded_from_fraction():
    mask = np.ones((10, 10), np.uint8)
    mask[2:8, 2:8] = 0  # a hole of 60 x 60 level-0 px in a 100 x 100 slide (scale 10)
    fr = grid.tissue_fractions(mask, (10.0, 10.0), np.array([[20, 20], [0, 0]]), 60)
    assert fr[0] == 0.0
    assert fr[1] == pytest.approx(1 - 40 * 40 / 3600)


def test_patch_size_level0():
    assert grid.patch_size_level0(168.0, 0.25) == 672
    assert grid.patch_size_level0(168.0, 0.5) == 336
    assert grid.patch_size_level0(0.1, 0.5) == 1
