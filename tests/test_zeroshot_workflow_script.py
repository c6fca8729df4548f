"""Rules zeroshot and zeroshot_export run on the rule's params, wildcards and output only (no
workflow config), and match `pathgen zeroshot` / `pathgen zeroshot-export`."""

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
from pathgen.zeroshot.files import zeroshot_run_files
from pathgen.zeroshot.workflow import evaluate_benchmark
from pathgen.zeroshot.workflow import config_export, export_params, run_params, zeroshot_params

REPO = Path(__file__).resolve().parent.parent


def two_class_folder(root: Path) -> Path:
    """An ImageFolder benchmark: 3 flat-colour PNGs for each of tumor and normal."""
    for k, code in enumerate(("tumor", "normal")):
        for i in range(3):
            (root / code).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16, 3), 60 + 120 * k + i, np.uint8)).save(root / code / f"{i}.png")
    return root


def test_script_uses_params_and_its_section_only(tmp_path):
    torch.set_num_threads(1)
    root = two_class_folder(tmp_path / "bench")
    section = {"benchmarks": {"demo": {"root": str(root)}}, "bootstrap": 30, "batch_size": 4}
    cfg = validate_config({"results_dir": str(tmp_path / "results"), "evaluation": {"zeroshot": section}})
    expected = evaluate_benchmark(cfg, "demo", "tiny-demo")
    out = tmp_path / "rule_out"
    # no config at all: the benchmark, the model and the output-shaping settings come from
    # params.settings, how it runs (another batch size, the CPU) from params.run
    run = {**run_params(cfg), "batch_size": 2, "device": "cpu"}
    sm = SimpleNamespace(
        threads=1, log=[str(tmp_path / "zs.log")], wildcards=SimpleNamespace(benchmark="demo", model="tiny-demo"),
        params=SimpleNamespace(settings=zeroshot_params(cfg, "demo", "tiny-demo"), run=run),
        output=[str(zeroshot_run_files(out, p)["results"]) for p in cfg.evaluation.zeroshot.prompting])
    runpy.run_path(str(REPO / "workflow_scripts" / "zeroshot.py"), init_globals={"snakemake": sm})
    for mode, want in expected.items():
        got = json.loads(zeroshot_run_files(out, mode)["results"].read_text())
        assert got["n_images"] == want["n_images"] == 6
        for k in ("acc1", "balanced_accuracy", "macro_auroc"):
            assert np.isclose(got["metrics"][k], want["metrics"][k], atol=1e-6), (mode, k)
        # the params' bootstrap (30, not the section default), so the CIs match too
        assert got["bootstrap"] == want["bootstrap"] == {"resamples": 30, "seed": 0}
        assert got["ci95"] == want["ci95"]


def test_export_script_uses_params_only(tmp_path):
    """rule zeroshot_export: benchmark, models, prompting, seed, batch size and folder from
    params.export; the same dataset and commands as `pathgen zeroshot-export`."""
    import shutil

    torch.set_num_threads(1)
    root = two_class_folder(tmp_path / "bench")
    section = {"benchmarks": {"demo": {"root": str(root), "max_images": 4}}, "models": ["tiny-demo"],
               "batch_size": 3, "seed": 5, "prompting": ["single"]}
    cfg = validate_config({"results_dir": str(tmp_path / "results"), "evaluation": {"zeroshot": section}})
    L = Layout(cfg)
    files = Layout.clip_benchmark_files(L.clip_benchmark_dataset("demo"))
    expected = config_export(cfg, "demo", ["tiny-demo"])
    want = {k: files[k].read_bytes() for k in ("export", "classnames", "templates", "nshards")}
    shutil.rmtree(L.clip_benchmark_dir)
    sm = SimpleNamespace(threads=1, log=[str(tmp_path / "x.log")], wildcards=SimpleNamespace(benchmark="demo"),
                         input=SimpleNamespace(data=[str(root)], weights=[]), output=[str(files["export"])],
                         params=SimpleNamespace(export=export_params(cfg, "demo")))
    runpy.run_path(str(REPO / "workflow_scripts" / "zeroshot_export.py"), init_globals={"snakemake": sm})
    assert {k: files[k].read_bytes() for k in want} == want
    got = json.loads(files["export"].read_text())
    assert got["n_images"] == expected["n_images"] == 4  # the params' subsample (max_images, seed)
    assert "--batch_size 3" in got["commands"]["tiny-demo"]["single"]
    assert (L.clip_benchmark_model("tiny-demo") / "open_clip_config.json").is_file()
