"""MIL models: shapes, attention normalisation, ACMIL masking, determinism."""

import pytest
import torch

from pathgen.mil.models import MODELS, build_model

torch.set_num_threads(1)
KW = dict(hidden_dim=32, attn_dim=16, dropout=0.0, transmil_heads=4)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("n", [1, 7, 30])
def test_shapes_and_attention_sums_to_one(name, n):
    m = build_model(name, 12, 3, **KW).eval()
    out = m(torch.randn(n, 12))
    assert out["logits"].shape == (1, 3)
    assert out["attention"].shape == (n,)
    assert torch.all(out["attention"] >= 0)
    assert out["attention"].sum().item() == pytest.approx(1.0, abs=1e-5)
    loss = m.loss(out, torch.tensor(2))
    assert loss.dim() == 0 and torch.isfinite(loss)


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown MIL model"):
        build_model("clam_sb", 4, 2)


def test_acmil_masks_top_k_in_training_only():
    torch.manual_seed(0)
    m = build_model("acmil", 8, 2, **KW, n_branches=5, mask_top_k=10, mask_prob=1.0)
    x = torch.randn(40, 8)
    m.eval()
    with torch.no_grad():
        clean = m(x)["branch_attention"]                      # (5, 40), no masking in eval
        top = clean.topk(10, dim=1).indices
    assert torch.all(clean > 0)
    m.train()
    with torch.no_grad():
        masked = m(x)["branch_attention"]
    # every branch's 10 most attended instances get zero weight; the rest renormalise
    assert torch.all(masked.gather(1, top) == 0)
    assert torch.allclose(masked.sum(1), torch.ones(5))
    assert int((masked == 0).sum()) == 5 * 10


def test_acmil_mask_probability_and_keeps_one():
    m = build_model("acmil", 8, 2, **KW, n_branches=5, mask_top_k=10, mask_prob=0.6)
    torch.manual_seed(1)
    drops = torch.stack([m.mask(torch.randn(5, 40)) for _ in range(400)]).float()
    assert drops.sum(-1).mean().item() == pytest.approx(6.0, abs=0.3)  # 10 * 0.6 per branch
    tiny = m.mask(torch.randn(5, 3))
    assert torch.all(tiny.sum(1) <= 2)                       # a branch never loses every instance
    m.mask_prob = 1.0
    with torch.no_grad():
        out = m.train()(torch.randn(1, 8))                   # single instance: nothing maskable
    assert torch.isfinite(out["logits"]).all()


def test_acmil_diversity_loss():
    m = build_model("acmil", 8, 2, **KW)
    same = torch.softmax(torch.randn(1, 20), 1).repeat(5, 1)
    diff = torch.eye(20)[:5]
    assert m.diversity(same).item() == pytest.approx(1.0, abs=1e-5)
    assert m.diversity(diff).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_seeded_determinism(name):
    def run(seed):
        torch.manual_seed(seed)
        m = build_model(name, 6, 2, **{**KW, "dropout": 0.2}).train()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        x = torch.randn(25, 6)
        for _ in range(3):
            loss = m.loss(m(x), torch.tensor(1))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return m.eval()(x)["logits"]
    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))
