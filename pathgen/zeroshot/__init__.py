"""Zero-shot patch classification benchmarks (CLIP_benchmark-style results, CONCH prompts)."""


__all__ = ["Benchmark", "resolve_benchmark", "Samples", "load_samples", "bootstrap_ci",
           "point_metrics", "class_embeddings", "ensemble_prompts", "evaluate_benchmark",
           "result_path", "zeroshot_dir"]

from ..lazy import lazy_exports  # noqa: E402

_EXPORTS = {
    "Benchmark": ".benchmarks",
    "resolve_benchmark": ".benchmarks",
    "Samples": ".loaders",
    "load_samples": ".loaders",
    "bootstrap_ci": ".metrics",
    "point_metrics": ".metrics",
    "class_embeddings": ".prompts",
    "ensemble_prompts": ".prompts",
    "evaluate_benchmark": ".run",
    "result_path": ".run",
    "zeroshot_dir": ".run",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
