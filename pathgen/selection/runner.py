"""One slide's selection from its section and resolved models: which prompts (cancer type +
report findings), which text tower, where the outputs go. The embedding maths and the I/O live
in vectors.py / select.py; the glue that resolves the models from the config is
selection/workflow.py (chunk stage, CLI)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..config import ConfigError
from ..config.captioning import AgentSpec
from ..config.features import EncoderSpec
from ..config.selection import SelectionConfig
from ..instruct.chat import TextChat, chat_id
from . import reports as rep
from .prompts import cancer_type_of, load_prompt_book
from .select import TextEncoder, select_slide

log = logging.getLogger(__name__)
# Reply length of the findings extraction (a list of up to report_max_findings short phrases).
FINDINGS_MAX_TOKENS = 256


@dataclass(frozen=True)
class SelectionModels:
    """What selection uses besides its section, resolved by the caller: the encoder whose text
    tower embeds the prompts, the encoder that made the features (for the untrained-weights
    warning) and the summarize agent's chat settings (``report_extractor: llm`` only)."""

    text_encoder: str
    text_spec: EncoderSpec
    features_encoder: str
    features_spec: EncoderSpec
    chat: AgentSpec | None = None


def report_prompts(sel: SelectionConfig, slide_id: str, case_id: str | None, cache_dir: Path,
                   chat: AgentSpec | None = None) -> list[str]:
    """Prompts from the slide's report (empty when no reports file or no report)."""
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
        if chat is None:
            raise ConfigError("selection.report_extractor 'llm' needs the summarize agent's chat "
                              "settings (captioning.agents.summarize); use report_extractor: "
                              "keyword for the offline extractor")
        extractor_id = f"llm:{chat_id(chat)}:{rep.LLM_PROMPT_VERSION}"

        def compute(t):  # only on a cache miss: the chat connects (or loads) here
            with TextChat(chat, FINDINGS_MAX_TOKENS) as llm:
                return rep.extract_findings(t, llm, sel.report_max_findings)
    else:
        raise ConfigError(f"selection.report_extractor {sel.report_extractor!r}: use 'keyword' "
                          "(offline rule-based) or 'llm'")
    findings = rep.cached_findings(text, extractor_id, cache_dir, compute)
    log.info("%s: %d report findings (%s)", slide_id, len(findings), extractor_id)
    return rep.findings_to_prompts(findings, sel.report_prompt_template)


def slide_prompts(sel: SelectionConfig, slide_id: str, case_id: str | None = None,
                  cancer_type: str | None = None, cache_dir: Path | None = None,
                  chat: AgentSpec | None = None) -> list[str]:
    """Morphology prompts of the slide's cancer type (``cancer_type``, e.g. from
    :func:`slide_cancer_type`; None = ``sel.cancer_type``) + its report-derived prompts."""
    book = load_prompt_book(sel.prompts_file)
    ctype = cancer_type or sel.cancer_type
    code = book.resolve(ctype, sel.unknown_cancer_type)
    prompts = book.prompts_for(code, sel.include_generic)
    cache_dir = sel.report_cache_dir or cache_dir or Path("report_findings")
    for p in report_prompts(sel, slide_id, case_id, Path(cache_dir), chat):
        if p not in prompts:
            prompts.append(p)
    log.info("%s: cancer type %r -> prompt set %s (%d prompts)", slide_id, ctype, code, len(prompts))
    return prompts


def slide_cancer_type(sel: SelectionConfig, slide_id: str, sample_sheet: Path | None) -> str:
    """The slide's cancer type: its ``sel.cancer_type_column`` in the sample sheet, else
    ``sel.cancer_type`` (what the rule passes per slide, so a changed type re-runs it)."""
    return cancer_type_of(slide_id, sample_sheet, sel.cancer_type_column, sel.cancer_type)


def _encoder_key(spec: EncoderSpec) -> str:
    """Identity of an encoder's weights without loading it (spec + local checkpoint stat)."""
    spec = spec.model_dump(mode="json")
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


def load_text_encoder(name: str, spec: EncoderSpec, device: str = "cpu") -> TextEncoder:
    """The text tower of the CLIP that made the features, as texts -> (P, D) float32."""
    import torch

    from pathgen.encoders import load_encoder  # type: ignore

    torch.set_num_threads(1)
    enc = load_encoder(spec, device=device, name=name)

    def encode(texts: list[str]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for i in range(0, len(texts), 64):
                out.append(enc.encode_texts(texts[i:i + 64]).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, enc.embed_dim), np.float32)

    return encode


_WARNED: set[str] = set()


def untrained_encoder_warning(models: SelectionModels) -> str:
    """A warning when the encoder behind the selection embeddings has no pretrained weights
    (`pretrained: null`, e.g. the demo's tiny-demo): its embeddings are random projections,
    so prompt scores are noise and near-duplicate removal can collapse a slide. "" if fine."""
    specs = {models.features_encoder: models.features_spec, models.text_encoder: models.text_spec}
    bad = [n for n, spec in specs.items() if not spec.pretrained]
    if not bad:
        return ""
    return (f"selection encoder {', '.join(repr(n) for n in bad)} has no pretrained weights "
            "(pretrained: null = random init): prompt retrieval is meaningless and embeddings are "
            "near-identical, so dedup keeps few patches. Fine for the offline demo; for real data "
            "set features.encoder (and selection.text_encoder) to a pretrained CLIP, e.g. "
            "pathgen-clip")


def run_selection(sel: SelectionConfig, models: SelectionModels, slide_id: str,
                  features_path: str | os.PathLike, slide_path: str | os.PathLike | None,
                  out_csv: str | os.PathLike, patches_dir: str | os.PathLike,
                  case_id: str | None = None, cancer_type: str | None = None,
                  text_encoder: TextEncoder | None = None, cache_dir: Path | None = None,
                  embeddings_cache: Path | None = None) -> dict:
    """Select one slide's patches (CSV + images). ``cancer_type``: the slide's type
    (:func:`slide_cancer_type`); None = ``sel.cancer_type``. ``text_encoder``:
    a ready texts -> embeddings function (default: ``models.text_spec``'s text tower,
    loaded only when the slide has patches; cached per prompt in ``embeddings_cache``)."""
    prompts = (slide_prompts(sel, slide_id, case_id, cancer_type,
                             cache_dir or Path(out_csv).parent / "report_findings", chat=models.chat)
               if sel.prompt_top_k > 0 else [])

    class _Lazy:  # the text tower is only loaded when the slide has patches
        fn = None

        def __call__(self, texts):
            if self.fn is None:
                self.fn = text_encoder or load_text_encoder(models.text_encoder, models.text_spec,
                                                            sel.device)
            return self.fn(texts)

    encoder = _Lazy()
    if text_encoder is None and embeddings_cache is not None:
        encoder = cached_text_encoder(encoder, Path(embeddings_cache), _encoder_key(models.text_spec))

    warning = untrained_encoder_warning(models)
    if warning and warning not in _WARNED:
        _WARNED.add(warning)
        log.warning("!!! %s", warning)
    stats = select_slide(features_path, slide_path, slide_id, out_csv, patches_dir, prompts,
                         encoder, sel)
    if warning:
        stats["encoder_warning"] = warning
    return stats
