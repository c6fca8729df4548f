"""selection.max_per_slide is a hard cap on the union (prompt hits + prototypes), filled up to
it; dedup never empties a slide and says what it removed; an untrained encoder is flagged."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from pathgen.config import PathgenConfig
from pathgen.config.selection import SelectionConfig
from pathgen.selection import vectors
from pathgen.selection.runner import run_selection
from pathgen.selection.workflow import selection_models
from pathgen_testkit.feature_files import write_features_file


def clustered(n, dim=32, centers=40, spread=0.6, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim))
    return (c[rng.integers(0, centers, n)] + spread * rng.normal(size=(n, dim))).astype(np.float32)


def prompt_embeddings(n_prompts, dim):
    return np.random.default_rng(1).normal(size=(n_prompts, dim)).astype(np.float32)


def run(emb, n_prompts=20, top_k=8, cap=256, dedupe=0.95, min_keep=32, factor=1.6):
    text = prompt_embeddings(n_prompts, emb.shape[1]) if n_prompts else None
    prompts = [f"p{i}" for i in range(n_prompts)]
    return vectors.select(emb, text, prompts if n_prompts else [], top_k=top_k, factor=factor, cap=cap,
                          seed=0, n_init=1, dedupe_cosine=dedupe, min_keep=min_keep)


def test_union_never_exceeds_cap_and_fills_to_it():
    # The case: 3000 patches + 20 prompts x top-8 gave 357; k = 70 gave 210 prototypes.
    emb = clustered(3000)
    kept, stats = run(emb)
    assert stats["k"] == 70 and stats["prompt_hits"] > 100
    assert len(kept) == stats["kept"] == 256
    assert len({c.index for c in kept}) == 256
    # every prompt hit made it (fewer than the cap), prototypes filled the rest
    assert stats["from_prompts"] == stats["prompt_hits"]
    assert stats["from_prototypes"] == 256 - stats["prompt_hits"]


@pytest.mark.parametrize("cap", [1, 7, 50, 256])
def test_cap_is_hard_even_when_prompt_hits_exceed_it(cap):
    emb = clustered(600, seed=2)
    kept, stats = run(emb, n_prompts=20, top_k=8, cap=cap)
    assert len(kept) == cap
    if stats["prompt_hits"] >= cap:  # prompt hits take every place; round-robin over prompts
        assert all(c.source != vectors.SOURCE_CLUSTER for c in kept)
        top1 = vectors.prompt_scores(emb, prompt_embeddings(20, emb.shape[1])).argmax(axis=0)
        if cap >= 20:  # every prompt's best patch is in before any prompt's second
            assert set(top1.tolist()) <= {c.index for c in kept}


def test_fills_with_every_patch_when_the_slide_is_small():
    emb = clustered(90, seed=3)
    kept, stats = run(emb, n_prompts=3, top_k=2)
    assert len(kept) == 90 and stats["dedupe_removed"] == 0 and stats["dedupe_note"] == ""


def test_provenance_prompt_vs_prototype():
    emb = clustered(1000, seed=4)
    kept, stats = run(emb, n_prompts=5, top_k=4, cap=64)
    srcs = [c.source for c in kept]
    assert set(srcs) <= {vectors.SOURCE_PROMPT, vectors.SOURCE_CLUSTER, vectors.SOURCE_BOTH}
    assert srcs.count(vectors.SOURCE_CLUSTER) == stats["from_prototypes"] == 64 - stats["prompt_hits"]
    # precedence: prompt hits first, then prototypes
    first_proto = srcs.index(vectors.SOURCE_CLUSTER)
    assert all(s != vectors.SOURCE_CLUSTER for s in srcs[:first_proto])
    assert all(s == vectors.SOURCE_CLUSTER for s in srcs[first_proto:])
    assert all(c.prompt for c in kept[:first_proto]) and not any(c.prompt for c in kept[first_proto:])


def degenerate(n=46, dim=32, seed=5):
    """What a random-init encoder gives: near-identical embeddings (pairwise cosine > 0.9999)."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=dim) + 1e-3 * rng.normal(size=(n, dim))).astype(np.float32)


def test_dedup_never_empties_a_slide_and_reports_why():
    emb = degenerate()
    kept, stats = run(emb, n_prompts=0, cap=40, dedupe=0.999, min_keep=32)
    assert len(kept) == 32  # dedup alone would keep 1
    assert stats["dedupe_restored"] == 31 and stats["dedupe_removed"] == 45 - 31
    assert "near-duplicates" in stats["dedupe_note"] and "dedupe_min_keep=32" in stats["dedupe_note"]
    kept0, stats0 = run(emb, n_prompts=0, cap=40, dedupe=0.999, min_keep=0)
    assert len(kept0) == 1 and stats0["dedupe_removed"] == 45 and stats0["dedupe_restored"] == 0
    assert "45 of 46 candidates were near-duplicates" in stats0["dedupe_note"]


def test_real_duplicates_are_still_removed_and_the_cap_refilled():
    base = clustered(200, seed=6)
    emb = np.concatenate([base, base + 1e-4])  # every patch twice
    kept, stats = run(emb, n_prompts=0, cap=150, dedupe=0.99)
    idx = {c.index % 200 for c in kept}
    assert len(kept) == 150 == len(idx)  # no pair kept twice, cap still filled
    assert stats["dedupe_removed"] > 0 and stats["dedupe_restored"] == 0


@pytest.mark.parametrize("encoders,name,warns", [
    ({}, "tiny-demo", True),
    ({"mine": {"arch": "ViT-B-16", "pretrained": "/models/clip.pt"}}, "mine", False),
])
def test_warns_when_the_selection_encoder_is_untrained(tmp_path, caplog, monkeypatch, encoders, name, warns):
    from pathgen.selection import runner

    monkeypatch.setattr(runner, "_WARNED", set())  # once per process: forget earlier tests' warning
    write_features_file(tmp_path / "E.h5", np.zeros((0, 8)), np.zeros((0, 2)))
    cfg = PathgenConfig(encoders=encoders, features={"encoder": name}, selection={"prompt_top_k": 0})
    with caplog.at_level(logging.WARNING, logger="pathgen.selection.runner"):
        stats = run_selection(cfg.selection, selection_models(cfg), f"E{name}", tmp_path / "E.h5",
                              None, tmp_path / "E.csv", tmp_path / "p" / "E")
    said = [r.getMessage() for r in caplog.records if "no pretrained weights" in r.getMessage()]
    assert bool(said) == warns and bool(stats.get("encoder_warning")) == warns
    if warns:
        assert "tiny-demo" in said[0] and "pathgen-clip" in said[0]


def test_old_cap_key_is_explained():
    with pytest.raises(ValueError, match="max_per_slide"):
        SelectionConfig(cluster_cap=40)
