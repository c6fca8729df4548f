"""Representative patch selection: prompt retrieval + k-means prototypes (PathGen-1.6M §3)."""

from .math import choose_k, dedupe, kmeans_prototypes, per_cluster_quota, topk_per_prompt
from .prompts import load_prompt_book
from .select import CSV_COLUMNS, read_selection, select_slide

__all__ = ["choose_k", "per_cluster_quota", "kmeans_prototypes", "topk_per_prompt", "dedupe",
           "load_prompt_book", "select_slide", "read_selection", "CSV_COLUMNS", "run_selection"]


def run_selection(*args, **kwargs):
    from .runner import run_selection as _run

    return _run(*args, **kwargs)
