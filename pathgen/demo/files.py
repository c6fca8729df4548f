"""File names of the embedded demo (``demo.out_dir``, default ``results/demo/``): slides,
ground-truth regions, labels, and the zero-shot benchmark cut from the holdout slides.

No config import.
"""

from __future__ import annotations

from pathlib import Path

DEMO_ZEROSHOT_DIR = "zeroshot"        # the patch benchmark folder (pathgen/demo/benchmark.py)
SLIDE_LABELS_CSV = "slide_labels.csv"


def demo_slide_files(demo_dir: str | Path, slide: str) -> dict[str, Path]:
    """A demo slide's SVS and ground-truth GeoJSON under demo.out_dir (jobs given the section)."""
    return {"slide": Path(demo_dir) / "slides" / f"{slide}.svs",
            "regions": Path(demo_dir) / "regions" / f"{slide}.geojson"}


def demo_labels_file(demo_dir: str | Path) -> Path:
    """<demo.out_dir>/slide_labels.csv, the name Layout.demo_labels uses."""
    return Path(demo_dir) / SLIDE_LABELS_CSV


def demo_zeroshot_dir(demo_dir: str | Path) -> Path:
    return Path(demo_dir) / DEMO_ZEROSHOT_DIR


def demo_zeroshot_patch(code: str, slide: str, x: int, y: int) -> str:
    """A benchmark patch, relative to the benchmark folder (ImageFolder layout)."""
    return f"{code}/{slide}_{x}_{y}.png"
