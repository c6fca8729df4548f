"""Config -> job arguments of the demo rules and `pathgen demo-*` (glue: takes the whole config)."""

from __future__ import annotations

from ..config import PathgenConfig
from ..paths import Layout
from .cohort import demo_holdout_ids


def holdout_sources(cfg: PathgenConfig, holdout: list[str] | None = None) -> dict[str, dict[str, str]]:
    """{"slides": id -> SVS, "regions": id -> GeoJSON} of the holdout demo slides (default: the
    cohort's holdout), what pathgen.demo.benchmark.demo_benchmark cuts the benchmark from."""
    d, L = cfg.demo, Layout(cfg)
    ids = demo_holdout_ids(d.n_slides, d.holdout_fraction, d.seed) if holdout is None else holdout
    return {"slides": {s: str(L.demo_slide(s)) for s in ids},
            "regions": {s: str(L.demo_regions(s)) for s in ids}}
