"""Rules demo_labels and demo_benchmark run on what the rule passes (params, output), not on
the workflow config, and write what the `pathgen demo-*` entry points write."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

from pathgen.config import validate_config
from pathgen.demo.benchmark import demo_benchmark
from pathgen.demo.generate import generate_demo
from pathgen.demo.workflow import holdout_sources
from pathgen.paths import Layout

REPO = Path(__file__).resolve().parent.parent
# the demo keys rules/demo.smk passes to demo_benchmark (DEMO_SLIDE_KEYS, DEMO_BENCHMARK_KEYS)
SLIDE_KEYS = {"seed", "width_px", "height_px", "mpp", "app_mag", "tile_size", "jpeg_quality"}
BENCHMARK_KEYS = {"holdout_fraction", "zeroshot_min_purity", "zeroshot_max_per_class", "zeroshot_stride",
                  "zeroshot_template"}


def _run(script: str, sm) -> None:
    runpy.run_path(str(REPO / "workflow_scripts" / script), init_globals={"snakemake": sm})


def test_demo_scripts_use_params_only(tmp_path):
    cfg = validate_config({"results_dir": str(tmp_path / "res"),
                           "demo": {"out_dir": str(tmp_path / "demo"), "n_slides": 4, "width_px": 1536,
                                    "height_px": 1024, "holdout_fraction": 0.5, "zeroshot_min_purity": 0.75,
                                    "zeroshot_max_per_class": 20, "seed": 2},
                           "tiling": {"patch_size_um": 64, "target_mpp": 1.0}})
    L = Layout(cfg)
    generate_demo(cfg.demo)
    src = holdout_sources(cfg)
    assert set(src["slides"]) == {"demo_001", "demo_002", "demo_003"}
    expected = demo_benchmark(cfg.demo, cfg.tiling, src["slides"], src["regions"], tmp_path / "cli_zs")
    out = L.demo_zeroshot_files(tmp_path / "rule_zs")
    sm = SimpleNamespace(
        log=[str(tmp_path / "b.log")], wildcards=SimpleNamespace(), input=SimpleNamespace(demo=[]),
        output=SimpleNamespace(**{k: str(v) for k, v in out.items()}),
        params=SimpleNamespace(demo=cfg.demo.model_dump(mode="json", include=SLIDE_KEYS),
                               benchmark=cfg.demo.model_dump(mode="json", include=BENCHMARK_KEYS),
                               sources=src, tiling=cfg.tiling.model_dump(mode="json")))
    _run("demo_benchmark.py", sm)
    # the same patches (the params' seed and purity, not the defaults) and the same files
    assert out["manifest"].read_text() == (tmp_path / "cli_zs" / "manifest.csv").read_text()
    assert out["classes"].read_text() == (tmp_path / "cli_zs" / "classes.json").read_text()
    assert sum(expected["counts"].values()) == len(out["manifest"].read_text().splitlines()) - 1

    labels = tmp_path / "rule_labels.csv"
    _run("demo_labels.py", SimpleNamespace(log=[str(tmp_path / "l.log")],
                                           params=SimpleNamespace(demo=cfg.demo.model_dump(mode="json")),
                                           output=SimpleNamespace(labels=str(labels))))
    assert labels.read_text() == L.demo_labels.read_text()  # generate_demo's table
