"""Representative patch selection: prompt retrieval + k-means prototypes (PathGen-1.6M §3)."""


__all__ = ["choose_k", "per_cluster_quota", "kmeans_prototypes", "topk_per_prompt", "dedupe",
           "load_prompt_book", "select_slide", "read_selection", "CSV_COLUMNS", "run_selection"]

from ..lazy import lazy_exports  # noqa: E402

_EXPORTS = {
    "choose_k": ".vectors",
    "dedupe": ".vectors",
    "kmeans_prototypes": ".vectors",
    "per_cluster_quota": ".vectors",
    "topk_per_prompt": ".vectors",
    "load_prompt_book": ".prompts",
    "CSV_COLUMNS": ".select",
    "read_selection": ".select",
    "select_slide": ".select",
    "run_selection": ".runner",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
