"""Class prompts and class embeddings.

- single: one prompt per class (the reference protocol: template.format(class text)).
- ensemble: CONCH-style prompt file ``{"0": {"classnames": {CLASS: [synonym, ...]},
  "templates": ["... CLASSNAME ..."]}}``; a class embedding is the mean of the L2-normalised
  embeddings of every synonym x template, L2-normalised again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ..config.base import ConfigError
from .benchmarks import PROMPT_DIR, Benchmark
from .files import DEFAULT_TEMPLATES_JSON

PLACEHOLDER = "CLASSNAME"


def read_prompt_file(path: Path) -> tuple[dict[str, list[str]], list[str]]:
    try:
        data = json.loads(Path(path).read_text())
        block = data["0"] if "0" in data else data
        classnames, templates = block.get("classnames", {}), block["templates"]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError(f"{path}: not a CONCH-style prompt file ({{\"0\": {{\"classnames\": "
                          f"{{CLASS: [..]}}, \"templates\": [..]}}}}): {err}") from None
    bad = [t for t in templates if PLACEHOLDER not in t]
    if bad or not templates:
        raise ConfigError(f"{path}: every template needs the {PLACEHOLDER} placeholder; bad: {bad[:3]}")
    return {str(k): list(v) for k, v in classnames.items()}, list(templates)


def ensemble_prompts(bm: Benchmark) -> dict[str, list[str]]:
    """Class code -> all prompts (synonyms x templates). Classes missing from the prompt file
    (or no file) use their class text with the file's / the default templates."""
    classnames, templates = {}, []
    if bm.prompt_file is not None:
        classnames, templates = read_prompt_file(bm.prompt_file)
        unknown = set(classnames) - set(bm.classes)
        if unknown:
            raise ConfigError(f"{bm.prompt_file}: classes {sorted(unknown)} are not classes of "
                              f"benchmark {bm.name} ({', '.join(bm.classes)})")
    if not templates:
        _, templates = read_prompt_file(PROMPT_DIR / DEFAULT_TEMPLATES_JSON)
    out = {}
    for code in bm.classes:
        synonyms = classnames.get(code) or [bm.class_texts[code]]
        out[code] = [t.replace(PLACEHOLDER, s) for s in synonyms for t in templates]
    return out


def class_embeddings(prompts: dict[str, list[str]], encode_texts: Callable[[list[str]], torch.Tensor],
                     classes: list[str], batch: int = 256) -> torch.Tensor:
    """(C, D) class embeddings: per class, mean of normalised prompt embeddings, renormalised."""
    rows = []
    for code in classes:
        texts = prompts[code]
        emb = torch.cat([F.normalize(encode_texts(texts[i:i + batch]).float(), dim=-1)
                         for i in range(0, len(texts), batch)])
        rows.append(F.normalize(emb.mean(dim=0), dim=-1))
    return torch.stack(rows)


def single_prompts(bm: Benchmark) -> dict[str, list[str]]:
    return {c: [bm.single_prompts[c]] for c in bm.classes}
