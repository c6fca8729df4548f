"""Caption token budget measured with the real open_clip tokenizer of the CLIP that will
train on the captions (CLIP's text tower sees 77 tokens including SOT and EOT; longer
captions are silently truncated during training, so we never emit them).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


@functools.lru_cache(maxsize=8)
def _tokenizer(arch: str):
    import open_clip

    try:
        return open_clip.get_tokenizer(arch)
    except Exception as err:  # unknown arch or an HF tokenizer that cannot be fetched offline
        raise ValueError(f"captioning.clip_arch {arch!r}: cannot build its open_clip tokenizer "
                         f"({err}). Use an open_clip architecture name such as ViT-B-16.") from err


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


@dataclass(frozen=True)
class TokenBudget:
    arch: str = "ViT-B-16"
    max_tokens: int = 77

    def count(self, text: str) -> int:
        """Tokens CLIP sees for ``text``, SOT and EOT included."""
        tok = _tokenizer(self.arch)
        if hasattr(tok, "encode") and hasattr(tok, "sot_token_id"):  # open_clip SimpleTokenizer
            return len(tok.encode(text)) + 2
        inner = getattr(tok, "tokenizer", None)  # open_clip HFTokenizer wraps a HF tokenizer
        if inner is not None:
            return len(inner(text)["input_ids"])
        raise ValueError(f"unsupported tokenizer type {type(tok).__name__} for {self.arch}")

    def fits(self, text: str) -> bool:
        return self.count(text) <= self.max_tokens

    def max_words(self) -> int:
        """Word target given to the summarizer (pathology words average ~1.3 BPE tokens)."""
        return max(5, int((self.max_tokens - 2) / 1.4))

    def truncate(self, text: str) -> str:
        """Longest prefix of whole sentences that fits; if not even the first sentence fits,
        its longest prefix of whole clauses, then of whole words, closed with a full stop."""
        text = " ".join(text.split())
        if self.fits(text):
            return text
        sentences = split_sentences(text)
        kept: list[str] = []
        for s in sentences:
            if not self.fits(" ".join(kept + [s])):
                break
            kept.append(s)
        if kept:
            return " ".join(kept)
        first = sentences[0] if sentences else text
        for pieces in (_CLAUSE_END.split(first), first.split()):
            for i in range(len(pieces) - 1, 0, -1):
                cand = " ".join(pieces[:i]).rstrip(",;: ")
                cand = cand if cand.endswith((".", "!", "?")) else cand + "."
                if self.fits(cand):
                    return cand
        return ""
