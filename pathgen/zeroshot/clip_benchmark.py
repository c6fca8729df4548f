"""Export a zero-shot benchmark (and a model) in the layout CLIP_benchmark's CLI reads.

CLIP_benchmark's ``wds/<name>`` datasets (its documented WebDataset convention):
``<root>/test/{0..N-1}.tar`` with ``nshards.txt`` = N; each sample ``<key>.png`` (or
``.jpg``/``.webp``) + ``<key>.cls`` (the label index as text); ``<root>/classnames.txt`` one
class name per line in label order; ``<root>/zeroshot_classification_templates.txt`` one
template per line, formatted with ``template.format(c=classname)``. Its ``--custom_template_file``
JSON maps a dataset name to a template list or to ``{classname: [full prompts]}``, which carries
the ensemble prompts (CONCH synonyms x templates); it averages L2-normalised prompt embeddings
and renormalises, as pathgen does.

Models: ``--model <open_clip arch> --pretrained <tag or checkpoint>`` when stock open_clip can
build the arch; otherwise (pathgen's own configs such as ``pathgen-tiny-vit``, forced QuickGELU
or image size, random init) an open_clip ``local-dir:`` folder (``open_clip_config.json`` with
``model_cfg``/``preprocess_cfg`` + weights) is written and passed as ``--model local-dir:<dir>``.
"""

from __future__ import annotations

import io
import shlex
import tarfile
from pathlib import Path

import torch

from ..atomic import atomic_dir, write_json
from ..config.base import ConfigError
from ..config.features import EncoderSpec
from ..dataset.writers import tar_add
from ..encoders import MODEL_CONFIG_DIR
from ..encoders.weights import (HF_HUB_PREFIX, OPEN_CLIP_CONFIG, PREFERRED_CHECKPOINTS, pick_checkpoint,
                               resolve_hf_hub)
from .files import CB_ENSEMBLE_TEMPLATES_JSON, CB_SPLIT, clip_benchmark_files
from .benchmarks import Benchmark
from .loaders import Samples
from .prompts import PLACEHOLDER, ensemble_prompts

# open_clip's own name for torch-pickled weights in a model folder (plain tensors, weights_only-safe)
MODEL_WEIGHTS = next(n for n in PREFERRED_CHECKPOINTS if n.endswith(".bin"))
WDS_IMAGE_EXTS = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp"}  # what it decodes


def c_template(template: str) -> str:
    """pathgen's ``{}`` or CONCH's ``CLASSNAME`` placeholder -> CLIP_benchmark's ``{c}``; any
    other brace is escaped so ``.format(c=...)`` leaves it as written."""
    for ph in ("{}", PLACEHOLDER):
        if ph in template:
            return "{c}".join(p.replace("{", "{{").replace("}", "}}") for p in template.split(ph))
    raise ConfigError(f"template {template!r} has neither '{{}}' nor {PLACEHOLDER}")


def single_classnames_templates(bm: Benchmark) -> tuple[list[str], list[str]]:
    """Class names (label order) + templates reproducing pathgen's single prompts exactly:
    class texts with the benchmark template, or (per-class prompts given) the prompts with '{c}'."""
    texts = [bm.class_texts[c] for c in bm.classes]
    if bm.template and all(bm.single_prompts[c] == bm.template.format(bm.class_texts[c])
                           for c in bm.classes):
        return texts, [c_template(bm.template)]
    return [bm.single_prompts[c] for c in bm.classes], ["{c}"]


def ensemble_template_file(bm: Benchmark) -> dict:
    """``--custom_template_file`` content: {name: {class text: [every prompt]}}."""
    texts = [bm.class_texts[c] for c in bm.classes]
    if len(set(texts)) != len(texts):
        raise ConfigError(f"benchmark {bm.name}: class texts are not unique ({texts}); CLIP_benchmark "
                          "keys class-specific prompts by class name")
    prompts = ensemble_prompts(bm)
    return {bm.name: {bm.class_texts[c]: prompts[c] for c in bm.classes}}


def _lines(items: list[str], what: str) -> str:
    bad = [s for s in items if "\n" in s or s != s.strip() or not s]
    if bad:
        raise ConfigError(f"{what}: {bad[:2]} cannot be one line of a CLIP_benchmark text file")
    return "\n".join(items) + "\n"


def _image_member(samples: Samples, i: int) -> tuple[str, bytes]:
    """The file's own bytes when CLIP_benchmark decodes its format, else lossless PNG."""
    src = samples.sources[i]
    if samples.array is None and Path(src).suffix.lower() in WDS_IMAGE_EXTS:
        return WDS_IMAGE_EXTS[Path(src).suffix.lower()], Path(src).read_bytes()
    buf = io.BytesIO()
    samples.image(i).save(buf, format="PNG")
    return "png", buf.getvalue()


def _write_shards(split_dir: Path, samples: Samples, shard_size: int) -> int:
    n_shards = max(1, -(-len(samples) // shard_size))
    for k in range(n_shards):
        with tarfile.open(split_dir / f"{k}.tar", "w", format=tarfile.PAX_FORMAT) as tar:
            for i in range(k * shard_size, min(len(samples), (k + 1) * shard_size)):
                key = f"{i:08d}"  # no dots: WebDataset splits the extension at the first dot
                ext, data = _image_member(samples, i)
                tar_add(tar, f"{key}.{ext}", data)
                tar_add(tar, f"{key}.cls", str(int(samples.labels[i])).encode())
    return n_shards


def export_dataset(bm: Benchmark, samples: Samples, out_dir: Path, shard_size: int = 1000) -> dict:
    """Write ``out_dir`` as CLIP_benchmark's ``wds/<bm.name>`` dataset root (the same samples,
    labels and prompts pathgen scores)."""
    classnames, templates = single_classnames_templates(bm)
    with atomic_dir(out_dir) as tmp:
        files = clip_benchmark_files(tmp)
        files["split_dir"].mkdir()
        n_shards = _write_shards(files["split_dir"], samples, shard_size)
        files["nshards"].write_text(f"{n_shards}\n")
        files["classnames"].write_text(_lines(classnames, f"{bm.name} class names"))
        files["templates"].write_text(_lines(templates, f"{bm.name} templates"))
        write_json(files["ensemble"], ensemble_template_file(bm))
        info = {"dataset": f"wds/{bm.name}", "split": CB_SPLIT, "n_images": len(samples),
                "n_shards": n_shards, "classes": bm.classes, "classnames": classnames,
                "templates": templates}
        write_json(files["export"], info)
    return info


def needs_model_folder(spec: EncoderSpec) -> bool:
    """Stock open_clip cannot build it from `--model arch --pretrained x` alone."""
    if spec.arch is None:  # an hf-hub: repo with its own open_clip config
        return False
    own = spec.arch in {p.stem for p in MODEL_CONFIG_DIR.glob("*.json")}  # pathgen's configs
    return own or spec.pretrained is None or spec.force_quick_gelu or spec.image_size is not None


def write_model_folder(encoder, spec: EncoderSpec, out_dir: Path) -> Path:
    """An open_clip ``local-dir:`` folder with the encoder's exact weights and preprocessing."""
    import open_clip

    cfg = open_clip.get_model_config(spec.arch)
    if cfg is None:
        raise ConfigError(f"open_clip knows no config for arch {spec.arch!r}")
    if spec.force_quick_gelu:
        cfg["quick_gelu"] = True
    if spec.image_size is not None:
        cfg["vision_cfg"]["image_size"] = spec.image_size
    pre = dict(getattr(encoder.model.visual, "preprocess_cfg", {}) or {})
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / OPEN_CLIP_CONFIG, {"model_cfg": cfg, "preprocess_cfg": pre})
        torch.save({k: v.detach().cpu() for k, v in encoder.model.state_dict().items()},
                   tmp / MODEL_WEIGHTS)
    return out_dir


def open_clip_names(spec: EncoderSpec) -> tuple[str | None, str]:
    """(model, pretrained) that ``open_clip.create_model_and_transforms`` loads for an open_clip
    spec: hub repos with an open_clip config by their ``hf-hub:`` schema, hub checkpoints by
    their cached file, local files/folders by absolute path, tags as they are."""
    value = spec.pretrained or ""
    if value.startswith(HF_HUB_PREFIX):
        hub = resolve_hf_hub(value, spec.revision)
        return (hub.target, "") if hub.kind == "schema" else (spec.arch, hub.target)
    path = Path(value)
    if value and path.is_dir():
        if (path / OPEN_CLIP_CONFIG).is_file():
            return f"local-dir:{path.resolve()}", ""
        return spec.arch, str((path / pick_checkpoint([f.name for f in path.iterdir()], value)).resolve())
    return spec.arch, str(path.resolve()) if value and path.exists() else value


def model_arguments(spec: EncoderSpec, encoder=None, model_dir: Path | None = None) -> tuple[str, str]:
    """(--model, --pretrained) for CLIP_benchmark; writes the local-dir folder when needed."""
    if spec.kind != "open_clip":
        raise ConfigError(f"CLIP_benchmark's open_clip loader cannot read a {spec.kind} encoder; "
                          "export an open_clip model")
    if not needs_model_folder(spec):
        return open_clip_names(spec)
    if encoder is None or model_dir is None:
        raise ConfigError(f"arch {spec.arch!r} needs an exported model folder (pass the encoder)")
    return f"local-dir:{write_model_folder(encoder, spec, model_dir).resolve()}", ""


def eval_command(name: str, dataset_root: Path, model: str, pretrained: str, output: Path,
                 ensemble: bool = False, batch_size: int = 64) -> list[str]:
    """The `clip_benchmark eval` argv scoring the export as pathgen does (fp32: --no_amp)."""
    argv = ["clip_benchmark", "eval", "--dataset", f"wds/{name}", "--dataset_root",
            str(dataset_root), "--model", model, "--pretrained", pretrained,
            "--task", "zeroshot_classification", "--output", str(output), "--no_amp",
            "--batch_size", str(batch_size), "--num_workers", "0"]
    if ensemble:
        argv += ["--custom_template_file", str(Path(dataset_root) / CB_ENSEMBLE_TEMPLATES_JSON)]
    return argv


def shell(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)

