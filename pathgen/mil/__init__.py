"""WSI multiple-instance-learning benchmarks (ABMIL, ACMIL, TransMIL) on slide features.

Reads label tables (CLAM / STAMP), splits (CLAM `splits_<k>.csv` / JSON, or generated
patient-level stratified folds) and per-slide feature files (pathgen / TRIDENT / CLAM / STAMP),
trains one model per fold and writes CLAM-style predictions, metrics and attention heatmaps.
"""

from ..lazy import lazy_exports  # noqa: E402

_EXPORTS = {
    "MODELS": ".models",
    "build_model": ".models",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
