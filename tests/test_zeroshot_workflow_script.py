"""Rule zeroshot's script runs on the rule's params and output plus the evaluation.zeroshot
section only (no whole-config validation), and matches `pathgen zeroshot`."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from pathgen.config import validate_config
from pathgen.paths import Layout
from pathgen.zeroshot.run import evaluate_benchmark
from pathgen.zeroshot.workflow import zeroshot_params

REPO = Path(__file__).resolve().parent.parent


def test_script_uses_params_and_its_section_only(tmp_path):
    torch.set_num_threads(1)
    root = tmp_path / "bench"
    for k, code in enumerate(("tumor", "normal")):
        for i in range(3):
            (root / code).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16, 3), 60 + 120 * k + i, np.uint8)).save(root / code / f"{i}.png")
    section = {"benchmarks": {"demo": {"root": str(root)}}, "bootstrap": 30, "batch_size": 4}
    cfg = validate_config({"results_dir": str(tmp_path / "results"), "evaluation": {"zeroshot": section}})
    expected = evaluate_benchmark(cfg, "demo", "tiny-demo")
    out = tmp_path / "rule_out"
    # config: only execution settings of the section (no benchmarks, no results_dir): the
    # benchmark, the model and the output-shaping settings come from the params
    sm = SimpleNamespace(
        config={"evaluation": {"zeroshot": {"batch_size": 2, "device": "cpu"}}}, threads=1,
        log=[str(tmp_path / "zs.log")], wildcards=SimpleNamespace(benchmark="demo", model="tiny-demo"),
        params=SimpleNamespace(settings=zeroshot_params(cfg, "demo", "tiny-demo")),
        output=[str(Layout.zeroshot_run_files(out, p)["results"]) for p in cfg.evaluation.zeroshot.prompting])
    runpy.run_path(str(REPO / "workflow_scripts" / "zeroshot.py"), init_globals={"snakemake": sm})
    for mode, want in expected.items():
        got = json.loads(Layout.zeroshot_run_files(out, mode)["results"].read_text())
        assert got["n_images"] == want["n_images"] == 6
        for k in ("acc1", "balanced_accuracy", "macro_auroc"):
            assert np.isclose(got["metrics"][k], want["metrics"][k], atol=1e-6), (mode, k)
        # the params' bootstrap (30, not the section default), so the CIs match too
        assert got["bootstrap"] == want["bootstrap"] == {"resamples": 30, "seed": 0}
        assert got["ci95"] == want["ci95"]
