"""File names of zero-shot evaluation (``<results>/eval/zeroshot/``), of a patch benchmark
folder (the demo benchmark writes one) and of the CLIP_benchmark export
(``<results>/eval/clip_benchmark/``).

No config import.
"""

from __future__ import annotations

from pathlib import Path

EVAL_DIR = "eval"                     # <results>/eval/ (zero-shot and MIL)
ZEROSHOT_DIR = "zeroshot"             # eval/zeroshot/<benchmark>/<model>/
ZEROSHOT_TABLE_CSV = "table.csv"
ZEROSHOT_TABLE_MD = "table.md"
# a patch benchmark folder (ImageFolder layout <class>/<file> + these)
CLASSES_JSON = "classes.json"
TEMPLATE_FILE = "template"
PROMPTS_CONCH_JSON = "prompts_conch.json"
MANIFEST_CSV = "manifest.csv"
DEFAULT_TEMPLATES_JSON = "default_templates.json"  # packaged resource: pathgen/prompts/zeroshot/
# CLIP_benchmark's WebDataset layout (`clip_benchmark eval --dataset wds/<name>`), written by
# `pathgen zeroshot-export`: <root>/<split>/{0..N-1}.tar + nshards.txt, classnames and templates
CLIP_BENCHMARK_DIR = "clip_benchmark"
CB_SPLIT = "test"
CB_NSHARDS_TXT = "nshards.txt"
CB_CLASSNAMES_TXT = "classnames.txt"
CB_TEMPLATES_TXT = "zeroshot_classification_templates.txt"
CB_ENSEMBLE_TEMPLATES_JSON = "ensemble_templates.json"  # --custom_template_file (class -> prompts)
CB_EXPORT_JSON = "pathgen_export.json"                   # what was exported + the command to run


def zeroshot_run_files(run_dir: str | Path, prompting: str) -> dict[str, Path]:
    """One prompting mode's files in a benchmark x model folder (zeroshot/run.py)."""
    d = Path(run_dir)
    return {"results": d / f"results_{prompting}.json",
            "predictions": d / f"predictions_{prompting}.csv",
            "confusion_csv": d / f"confusion_{prompting}.csv",
            "confusion_png": d / f"confusion_{prompting}.png"}


def zeroshot_table_files(zeroshot_dir: str | Path) -> dict[str, Path]:
    """The combined zero-shot table (rule zeroshot_table)."""
    d = Path(zeroshot_dir)
    return {"csv": d / ZEROSHOT_TABLE_CSV, "md": d / ZEROSHOT_TABLE_MD}


def table_files(stem: str | Path) -> dict[str, Path]:
    """<stem>.csv and <stem>.md of a results table written where a user asked (--out)."""
    return {"csv": Path(f"{stem}.csv"), "md": Path(f"{stem}.md")}


def benchmark_files(root: str | Path) -> dict[str, Path]:
    """A patch benchmark folder's declared files (the demo benchmark writes all four)."""
    d = Path(root)
    return {"classes": d / CLASSES_JSON, "template": d / TEMPLATE_FILE,
            "prompts": d / PROMPTS_CONCH_JSON, "manifest": d / MANIFEST_CSV}


def benchmark_classes(root: str | Path) -> Path:
    """classes.json of a patch benchmark folder (written by the demo benchmark)."""
    return benchmark_files(root)["classes"]


def benchmark_prompts(root: str | Path) -> Path:
    """CONCH-style prompt file a patch benchmark folder may carry (the demo benchmark's)."""
    return benchmark_files(root)["prompts"]


def clip_benchmark_paths(cb_dir: str | Path, benchmark: str, model: str = "",
                         prompting: str = "") -> dict[str, Path]:
    """Under the clip_benchmark folder (Layout.clip_benchmark_dir): a benchmark's wds dataset
    root, a model's open_clip `local-dir:` folder and one `clip_benchmark eval` --output."""
    d = Path(cb_dir)
    return {"dataset": d / "wds" / benchmark, "model": d / "models" / model,
            "result": d / "results" / benchmark / model / f"results_{prompting}.json"}


def clip_benchmark_files(dataset_root: str | Path) -> dict[str, Path]:
    """The files CLIP_benchmark's wds loader reads (shards: split_dir / f"{i}.tar")."""
    d = Path(dataset_root)
    return {"split_dir": d / CB_SPLIT, "nshards": d / CB_SPLIT / CB_NSHARDS_TXT,
            "classnames": d / CB_CLASSNAMES_TXT, "templates": d / CB_TEMPLATES_TXT,
            "ensemble": d / CB_ENSEMBLE_TEMPLATES_JSON, "export": d / CB_EXPORT_JSON}
