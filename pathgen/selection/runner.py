"""Config-level glue for one slide: which prompts (cancer type + report findings), which text
tower, where the outputs go. The embedding maths and the I/O live in vectors.py / select.py."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..config import ConfigError, PathgenConfig
from ..instruct.chat import ChatFn, openai_chat
from . import reports as rep
from .prompts import cancer_type_of, load_prompt_book
from .select import TextEncoder, select_slide

log = logging.getLogger(__name__)


def chat_backend(cfg: PathgenConfig) -> ChatFn:
    """The LLM used for report findings: the captioning `openai` backend's text chat."""
    try:
        return openai_chat(cfg.captioning.openai, max_tokens=256)
    except ImportError as err:
        raise ConfigError("selection.report_extractor: llm needs pathgen.captioning.backends.openai "
                          f"({err}); use report_extractor: keyword for the offline extractor") from None


def report_prompts(cfg: PathgenConfig, slide_id: str, case_id: str | None,
                   cache_dir: Path) -> list[str]:
    """Prompts from the slide's report (empty when no reports file or no report)."""
    sel = cfg.selection
    if sel.reports is None:
        return []
    text = rep.report_for(slide_id, rep.load_reports(sel.reports), case_id)
    if text is None:
        log.info("%s: no report in %s", slide_id, sel.reports)
        return []
    if sel.report_extractor == rep.KEYWORD_EXTRACTOR:
        extractor_id = rep.KEYWORD_ID
        compute = lambda t: rep.keyword_findings(t, sel.report_max_findings)  # noqa: E731
    elif sel.report_extractor == "llm":
        extractor_id = f"llm:openai:{cfg.captioning.openai.model}:{rep.LLM_PROMPT_VERSION}"
        state = {}

        def compute(t):
            state.setdefault("backend", chat_backend(cfg))  # only built on a cache miss
            return rep.extract_findings(t, state["backend"], sel.report_max_findings)
    else:
        raise ConfigError(f"selection.report_extractor {sel.report_extractor!r}: use 'keyword' "
                          "(offline rule-based) or 'llm'")
    findings = rep.cached_findings(text, extractor_id, cache_dir, compute)
    log.info("%s: %d report findings (%s)", slide_id, len(findings), extractor_id)
    return rep.findings_to_prompts(findings, sel.report_prompt_template)


def slide_prompts(cfg: PathgenConfig, slide_id: str, case_id: str | None = None,
                  cancer_type: str | None = None, cache_dir: Path | None = None) -> list[str]:
    """Morphology prompts of the slide's cancer type + its report-derived prompts."""
    sel = cfg.selection
    book = load_prompt_book(sel.prompts_file)
    ctype = cancer_type or cancer_type_of(slide_id, cfg.slides.sample_sheet,
                                          sel.cancer_type_column, sel.cancer_type)
    code = book.resolve(ctype, sel.unknown_cancer_type)
    prompts = book.prompts_for(code, sel.include_generic)
    cache_dir = sel.report_cache_dir or cache_dir or Path("report_findings")
    for p in report_prompts(cfg, slide_id, case_id, Path(cache_dir)):
        if p not in prompts:
            prompts.append(p)
    log.info("%s: cancer type %r -> prompt set %s (%d prompts)", slide_id, ctype, code, len(prompts))
    return prompts


def _encoder_key(cfg: PathgenConfig, name: str) -> str:
    """Identity of an encoder's weights without loading it (spec + local checkpoint stat)."""
    spec = cfg.encoder_spec(name).model_dump(mode="json")
    ckpt = Path(str(spec.get("pretrained") or ""))
    if spec.get("pretrained") and ckpt.is_file():
        st = ckpt.stat()
        spec["_file"] = [str(ckpt.resolve()), st.st_size, st.st_mtime_ns]
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def cached_text_encoder(encode: TextEncoder, cache_dir: Path, key: str) -> TextEncoder:
    """Wrap a text encoder with an on-disk cache of prompt embeddings (one .npy per prompt).

    Every slide of a run scores the same prompts with the same text tower: the first job
    embeds them, the others read the cache and never import torch/open_clip (seconds per job)."""
    def cached(texts: list[str]) -> np.ndarray:
        paths = [cache_dir / key / (hashlib.sha256(t.encode()).hexdigest()[:24] + ".npy") for t in texts]
        missing = [i for i, p in enumerate(paths) if not p.exists()]
        if missing:
            fresh = encode([texts[i] for i in missing])
            for i, row in zip(missing, fresh):
                with atomic_path(paths[i], suffix=".npy") as tmp:
                    np.save(tmp, row.astype(np.float32))
        return np.stack([np.load(p) for p in paths]) if paths else np.zeros((0, 0), np.float32)

    return cached


def load_text_encoder(cfg: PathgenConfig, name: str | None = None) -> TextEncoder:
    """The text tower of the CLIP that made the features, as texts -> (P, D) float32."""
    import torch

    from pathgen.encoders import load_encoder  # type: ignore

    torch.set_num_threads(1)
    enc = load_encoder(name or cfg.selection.text_encoder or cfg.features.encoder, cfg,
                       device=cfg.selection.device)

    def encode(texts: list[str]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), 64):
                out.append(enc.encode_texts(texts[i:i + 64]).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, enc.embed_dim), np.float32)

    return encode


_WARNED: set[str] = set()


def untrained_encoder_warning(cfg: PathgenConfig) -> str:
    """A warning when the encoder behind the selection embeddings has no pretrained weights
    (`pretrained: null`, e.g. the demo's tiny-demo): its embeddings are random projections,
    so prompt scores are noise and near-duplicate removal can collapse a slide. "" if fine."""
    names = dict.fromkeys([cfg.features.encoder, cfg.selection.text_encoder or cfg.features.encoder])
    bad = [n for n in names if not cfg.encoder_spec(n).pretrained]
    if not bad:
        return ""
    return (f"selection encoder {', '.join(repr(n) for n in bad)} has no pretrained weights "
            "(pretrained: null = random init): prompt retrieval is meaningless and embeddings are "
            "near-identical, so dedup keeps few patches. Fine for the offline demo; for real data "
            "set features.encoder (and selection.text_encoder) to a pretrained CLIP, e.g. "
            "pathgen-clip")


def run_selection(cfg: PathgenConfig, slide_id: str, features_path: str | os.PathLike,
                  slide_path: str | os.PathLike | None, out_csv: str | os.PathLike,
                  patches_dir: str | os.PathLike, case_id: str | None = None,
                  cancer_type: str | None = None, text_encoder: TextEncoder | None = None,
                  cache_dir: Path | None = None, embeddings_cache: Path | None = None) -> dict:
    prompts = (slide_prompts(cfg, slide_id, case_id, cancer_type,
                             cache_dir or Path(out_csv).parent / "report_findings")
               if cfg.selection.prompt_top_k > 0 else [])

    class _Lazy:  # the text tower is only loaded when the slide has patches
        fn = None

        def __call__(self, texts):
            if self.fn is None:
                self.fn = text_encoder or load_text_encoder(cfg)
            return self.fn(texts)

    encoder = _Lazy()
    if text_encoder is None and embeddings_cache is not None:
        name = cfg.selection.text_encoder or cfg.features.encoder
        encoder = cached_text_encoder(encoder, Path(embeddings_cache), _encoder_key(cfg, name))

    warning = untrained_encoder_warning(cfg)
    if warning and warning not in _WARNED:
        _WARNED.add(warning)
        log.warning("!!! %s", warning)
    stats = select_slide(features_path, slide_path, slide_id, out_csv, patches_dir, prompts,
                         encoder, cfg.selection)
    if warning:
        stats["encoder_warning"] = warning
    return stats
