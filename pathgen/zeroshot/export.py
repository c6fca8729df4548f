"""`pathgen zeroshot-export`: a declared benchmark (and optionally models) for CLIP_benchmark.

Writes ``<results>/eval/clip_benchmark/wds/<benchmark>/`` (the dataset root) and, per model
that stock open_clip cannot build by name, ``.../models/<model>/`` (an open_clip ``local-dir:``
folder); ``pathgen_export.json`` in the dataset root lists the `clip_benchmark eval` commands
that score exactly what `pathgen zeroshot` scores.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..atomic import write_json
from ..config.evaluation import ZeroShotConfig
from ..config.features import EncoderSpec
from .files import clip_benchmark_files, clip_benchmark_paths
from .benchmarks import Benchmark
from .clip_benchmark import eval_command, export_dataset, model_arguments, needs_model_folder, shell
from .loaders import load_samples

log = logging.getLogger(__name__)


def export_benchmark(bm: Benchmark, zs: ZeroShotConfig, models: dict[str, EncoderSpec], out_dir: Path,
                     shard_size: int = 1000) -> dict:
    """Export the resolved benchmark ``bm`` (and ``models``: name -> spec) under ``out_dir``
    (Layout.clip_benchmark_dir) with evaluation.zeroshot's prompting, seed and batch size."""
    samples = load_samples(bm, zs.seed)  # the same (sub)sample pathgen zeroshot scores
    root = clip_benchmark_paths(out_dir, bm.name)["dataset"]
    info = export_dataset(bm, samples, root, shard_size)
    info["commands"] = {}
    for name, spec in models.items():
        model_arg, pretrained_arg = _model_args(spec, clip_benchmark_paths(out_dir, bm.name, name)["model"])
        results = {mode: clip_benchmark_paths(out_dir, bm.name, name, mode)["result"] for mode in zs.prompting}
        for out in results.values():  # clip_benchmark opens --output without creating folders
            out.parent.mkdir(parents=True, exist_ok=True)
        info["commands"][name] = {
            mode: shell(eval_command(bm.name, root, model_arg, pretrained_arg, out,
                                     ensemble=mode == "ensemble", batch_size=zs.batch_size))
            for mode, out in results.items()}
    write_json(clip_benchmark_files(root)["export"], info)
    log.info("CLIP_benchmark dataset wds/%s in %s (%d images, %d shards)", bm.name, root,
             info["n_images"], info["n_shards"])
    return info


def _model_args(spec: EncoderSpec, model_dir: Path) -> tuple[str, str]:
    if not needs_model_folder(spec):
        return model_arguments(spec)
    from ..encoders import load_encoder  # the encoder pathgen scores with: its exact weights

    return model_arguments(spec, load_encoder(spec, device="cpu"), model_dir)
