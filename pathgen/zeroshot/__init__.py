"""Zero-shot patch classification benchmarks (CLIP_benchmark-style results, CONCH prompts)."""

from .benchmarks import Benchmark, resolve_benchmark
from .loaders import Samples, load_samples
from .metrics import bootstrap_ci, point_metrics
from .prompts import class_embeddings, ensemble_prompts
from .run import evaluate_benchmark, result_path, zeroshot_dir

__all__ = ["Benchmark", "resolve_benchmark", "Samples", "load_samples", "bootstrap_ci",
           "point_metrics", "class_embeddings", "ensemble_prompts", "evaluate_benchmark",
           "result_path", "zeroshot_dir"]
