"""`pathgen zeroshot-export`: a declared benchmark (and optionally models) for CLIP_benchmark.

Writes ``<results>/eval/clip_benchmark/wds/<benchmark>/`` (the dataset root) and, per model
that stock open_clip cannot build by name, ``.../models/<model>/`` (an open_clip ``local-dir:``
folder); ``pathgen_export.json`` in the dataset root lists the `clip_benchmark eval` commands
that score exactly what `pathgen zeroshot` scores.
"""

from __future__ import annotations

import logging

from ..atomic import write_json
from ..config import PathgenConfig
from ..paths import Layout
from .benchmarks import resolve_benchmark
from .clip_benchmark import eval_command, export_dataset, model_arguments, needs_model_folder, shell
from .layout import model_spec
from .loaders import load_samples

log = logging.getLogger(__name__)


def export_benchmark(cfg: PathgenConfig, benchmark: str, models: list[str] = (),
                     shard_size: int = 1000) -> dict:
    zs = cfg.evaluation.zeroshot
    if benchmark not in zs.benchmarks:
        raise KeyError(f"benchmark '{benchmark}' is not declared under evaluation.zeroshot.benchmarks "
                       f"(have: {', '.join(zs.benchmarks) or 'none'})")
    lay = Layout(cfg)
    bm = resolve_benchmark(benchmark, zs.benchmarks[benchmark])
    samples = load_samples(bm, zs.seed)  # the same (sub)sample pathgen zeroshot scores
    root = lay.clip_benchmark_dataset(benchmark)
    info = export_dataset(bm, samples, root, shard_size)
    info["commands"] = {}
    for name in models:
        model_arg, pretrained_arg = _model_args(cfg, name, lay)
        for mode in zs.prompting:  # clip_benchmark opens --output without creating folders
            lay.clip_benchmark_result(benchmark, name, mode).parent.mkdir(parents=True, exist_ok=True)
        info["commands"][name] = {
            mode: shell(eval_command(benchmark, root, model_arg, pretrained_arg,
                                     lay.clip_benchmark_result(benchmark, name, mode),
                                     ensemble=mode == "ensemble", batch_size=zs.batch_size))
            for mode in zs.prompting}
    write_json(Layout.clip_benchmark_files(root)["export"], info)
    log.info("CLIP_benchmark dataset wds/%s in %s (%d images, %d shards)", benchmark, root,
             info["n_images"], info["n_shards"])
    return info


def _model_args(cfg: PathgenConfig, name: str, lay: Layout) -> tuple[str, str]:
    spec = model_spec(cfg, name)
    if not needs_model_folder(spec):
        return model_arguments(spec)
    from ..encoders import load_encoder  # the encoder pathgen scores with: its exact weights

    encoder = load_encoder(spec, cfg, device="cpu")
    return model_arguments(spec, encoder, lay.clip_benchmark_model(name))
