"""Zero-shot patch classification benchmarks (CLIP_benchmark-style results, CONCH prompts)."""


__all__ = ["Benchmark", "resolve_benchmark", "Samples", "load_samples", "bootstrap_ci",
           "point_metrics", "class_embeddings", "ensemble_prompts", "evaluate",
           "evaluate_benchmark"]

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
    "evaluate": ".run",
    "evaluate_benchmark": ".workflow",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
