"""Run one benchmark x model: embed images once, score each prompting mode, write results.

Outputs in ``<results>/eval/zeroshot/<benchmark>/<model>/``:
``results_<prompting>.json`` (CLIP_benchmark's result schema ``{dataset, model, pretrained,
task, metrics: {acc1, acc5, mean_per_class_recall, ...}, language}`` plus pathgen extras),
``predictions_<prompting>.csv``, ``confusion_<prompting>.csv`` and ``.png``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..atomic import atomic_path, write_json
from ..config.evaluation import ZeroShotConfig
from ..config.features import EncoderSpec
from .benchmarks import Benchmark
from .files import zeroshot_run_files
from .loaders import Samples, load_samples
from .metrics import bootstrap_ci, confusion, point_metrics, top_k_accuracy
from .prompts import class_embeddings, ensemble_prompts, single_prompts
from .report import plot_confusion, write_confusion_csv

log = logging.getLogger(__name__)


@torch.inference_mode()
def embed_images(samples: Samples, encoder, batch_size: int = 64, num_workers: int = 0) -> torch.Tensor:
    class _DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(samples)

        def __getitem__(self, i):
            return encoder.preprocess(samples.image(i))

    loader = torch.utils.data.DataLoader(_DS(), batch_size=batch_size, num_workers=num_workers)
    return torch.cat([encoder.encode_images(x).float().cpu() for x in loader])


def score(image_emb: torch.Tensor, class_emb: torch.Tensor, logit_scale: float) -> np.ndarray:
    """Softmax over classes of logit_scale x cosine similarity (CLIP zero-shot)."""
    logits = logit_scale * image_emb @ class_emb.T.to(image_emb.dtype)
    return torch.softmax(logits, dim=-1).numpy()


def evaluate(bm: Benchmark, model: str, spec: EncoderSpec | None, zs: ZeroShotConfig, out_dir: Path,
             encoder=None) -> dict[str, dict]:
    """Evaluate ``model`` (built from ``spec`` unless ``encoder`` is given) on ``bm`` for every
    prompting mode of ``zs`` (evaluation.zeroshot); writes the results in ``out_dir`` and
    returns them. Rule zeroshot's entry point: settings and a folder, not the whole config."""
    if encoder is None:
        from ..encoders import load_encoder

        encoder = load_encoder(spec, device=zs.device)
        encoder.name = model
    samples = load_samples(bm, zs.seed)
    log.info("%s x %s: %d images, %d classes", bm.name, model, len(samples), len(bm.classes))
    img = embed_images(samples, encoder, zs.batch_size, zs.num_workers)
    results = {}
    for mode in zs.prompting:
        prompts = single_prompts(bm) if mode == "single" else ensemble_prompts(bm)
        cls = class_embeddings(prompts, encoder.encode_texts, bm.classes).cpu()
        probs = score(img, cls, zs.logit_scale)
        results[mode] = write_run(Path(out_dir), mode, bm, model, encoder, samples, probs, prompts,
                                  zs.bootstrap, zs.seed, spec)
    return results


def _clip_benchmark_model(spec: EncoderSpec | None, model: str) -> tuple[str, str]:
    """(architecture, pretrained) as CLIP_benchmark's --model/--pretrained name them."""
    from ..encoders import EncoderError
    from .clip_benchmark import open_clip_names

    if spec is None:
        return model, ""
    if spec.kind != "open_clip":  # an HF CLIPModel: its id/path is what loads it
        return spec.pretrained or model, ""
    try:
        arch, pretrained = open_clip_names(spec)  # hub files are cached: the encoder just loaded
    except EncoderError:
        arch, pretrained = spec.arch, spec.pretrained or ""
    return arch or model, pretrained


def write_run(out_dir: Path, mode: str, bm: Benchmark, model: str, encoder, samples: Samples,
              probs: np.ndarray, prompts: dict[str, list[str]], n_boot: int, seed: int,
              spec: EncoderSpec | None = None) -> dict:
    y = samples.labels
    pm = point_metrics(y, probs)
    ci = bootstrap_ci(y, probs, n_boot, seed)
    cm = confusion(y, probs.argmax(axis=1), len(bm.classes))
    arch, pretrained = _clip_benchmark_model(spec, model)
    result = {
        # CLIP_benchmark's keys: model = open_clip architecture, pretrained = loadable path/tag;
        # metrics holds numbers only (its readers tabulate every key of it)
        "dataset": bm.name, "model": arch, "pretrained": pretrained,
        "task": "zeroshot_classification", "language": "en",
        "metrics": {
            # acc5 is NaN under 5 classes, as CLIP_benchmark reports it
            "acc1": pm["accuracy"],
            "acc5": top_k_accuracy(y, probs, 5) if probs.shape[1] >= 5 else float("nan"),
            "mean_per_class_recall": pm["balanced_accuracy"], **pm,
        },
        "ci95": ci, "bootstrap": {"resamples": n_boot, "seed": seed},
        "pathgen_encoder": model,
        "pathgen_weights": getattr(encoder, "weights", None) or getattr(encoder, "identifier", ""),
        "prompting": mode, "n_images": int(len(y)), "classes": bm.classes,
        "class_texts": bm.class_texts, "chance_balanced_accuracy": 1.0 / len(bm.classes),
        "n_prompts_per_class": {c: len(p) for c, p in prompts.items()},
        "example_prompts": {c: p[:3] for c, p in prompts.items()},
        "confusion_matrix": cm.tolist(), "pathgen_version": __version__,
    }
    files = zeroshot_run_files(out_dir, mode)
    write_json(files["results"], result)
    write_confusion_csv(files["confusion_csv"], cm, bm.classes)
    plot_confusion(files["confusion_png"], cm, bm.classes,
                   f"{bm.name} / {model} ({mode}): bal. acc {pm['balanced_accuracy']:.3f}")
    with atomic_path(files["predictions"]) as tmp:
        import csv

        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image", "label", "pred", *[f"p_{c}" for c in bm.classes]])
            for i, row in enumerate(probs):
                w.writerow([samples.ids[i], bm.classes[y[i]], bm.classes[int(row.argmax())],
                            *[f"{v:.6f}" for v in row]])
    log.info("%s / %s / %s: acc %.4f, bal.acc %.4f %s, wF1 %.4f, AUROC %.4f", bm.name, model, mode,
             pm["accuracy"], pm["balanced_accuracy"], ci.get("balanced_accuracy", ""),
             pm["weighted_f1"], pm["macro_auroc"])
    return result
