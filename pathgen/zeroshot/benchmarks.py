"""Benchmark definitions: presets (pathgen/data/benchmarks.yaml) merged with the user's entry."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from ..config.base import ConfigError
from ..config.evaluation import ZeroShotBenchmark
from .files import benchmark_classes, benchmark_prompts

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "benchmarks.yaml"
PROMPT_DIR = Path(__file__).resolve().parent.parent / "prompts" / "zeroshot"
DEFAULT_TEMPLATE = "An H&E image of {}."


@lru_cache(maxsize=1)
def presets() -> dict[str, dict]:
    return yaml.safe_load(DATA_FILE.read_text())["zeroshot"]


@dataclass
class Benchmark:
    """A fully resolved benchmark: classes in label-index order plus prompts and loader keys."""

    name: str
    layout: str
    root: Path
    classes: list[str]                       # class codes, label index = position
    class_texts: dict[str, str]              # code -> class text
    single_prompts: dict[str, str]           # code -> the one reference prompt
    prompt_file: Path | None
    options: dict = field(default_factory=dict)  # loader keys (csv_file, image_dir, ...)
    label_map: dict[str, str] = field(default_factory=dict)
    max_images: int | None = None
    template: str | None = None              # the single-prompt template ('{}' = class text)


def _root_template(root: Path) -> str | None:
    for name in ("template", "template.txt"):
        if (root / name).is_file():
            text = (root / name).read_text().strip()
            if "{}" not in text:
                raise ConfigError(f"{root / name}: template {text!r} has no '{{}}' placeholder")
            return text
    return None


def _find_prompt_file(value: str) -> Path:
    path = Path(value)
    if path.is_file():
        return path
    if (PROMPT_DIR / value).is_file():
        return PROMPT_DIR / value
    raise ConfigError(f"prompt_file {value!r} is neither a file nor one of pathgen/prompts/zeroshot/ "
                      f"({', '.join(sorted(p.name for p in PROMPT_DIR.glob('*.json')))})")


def resolve_benchmark(name: str, spec: ZeroShotBenchmark) -> Benchmark:
    base: dict = {}
    if spec.preset is not None:
        if spec.preset not in presets():
            raise ConfigError(f"evaluation.zeroshot.benchmarks.{name}.preset '{spec.preset}' is not "
                              f"defined; known: {', '.join(presets())}")
        base = dict(presets()[spec.preset])
    merged = {**base, **{k: v for k, v in spec.model_dump().items() if v not in (None, {})}}
    layout = merged.get("layout") or "imagefolder"  # the demo's and most datasets' layout
    root = Path(merged["root"])
    if not root.exists():
        raise FileNotFoundError(f"benchmark {name}: data folder {root} does not exist (download the "
                                "dataset there or fix evaluation.zeroshot.benchmarks."
                                f"{name}.root)")
    classes = merged.get("classes")
    classes_file = benchmark_classes(root)
    if classes is None and classes_file.is_file():
        try:
            classes = json.loads(classes_file.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{classes_file} is not valid JSON: {err}") from None
    if classes is None and layout == "imagefolder":
        classes = {d.name: d.name.replace("_", " ") for d in sorted(root.iterdir())
                   if d.is_dir() and not d.name.startswith(".")}
    if not classes or len(classes) < 2:
        raise ConfigError(f"benchmark {name}: needs at least two classes (set `classes` "
                          f"{{code: text}}, or write {classes_file})")
    classes = {str(k): str(v) for k, v in classes.items()}
    template = merged.get("template") or _root_template(root) or DEFAULT_TEMPLATE
    if "{}" not in template:
        raise ConfigError(f"benchmark {name}: template {template!r} needs a '{{}}' placeholder")
    prompts = {str(k): v for k, v in (merged.get("prompts") or {}).items()}
    single = {c: prompts.get(c) or template.format(t) for c, t in classes.items()}
    prompt_file = merged.get("prompt_file")
    if prompt_file is None and benchmark_prompts(root).is_file():
        prompt_file = str(benchmark_prompts(root))  # written beside the demo benchmark
    options = {k: merged[k] for k in ("csv_file", "image_key", "label_key", "image_dir",
                                       "split_key", "split_value", "partition") if merged.get(k)}
    return Benchmark(name=name, layout=layout, root=root, classes=list(classes),
                     class_texts=classes, single_prompts=single,
                     prompt_file=_find_prompt_file(prompt_file) if prompt_file else None,
                     options=options, label_map={str(k): str(v) for k, v in
                                                 (merged.get("label_map") or {}).items()},
                     max_images=merged.get("max_images"), template=template)
