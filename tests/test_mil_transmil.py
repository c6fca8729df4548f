"""TransMIL with Nyström attention: shapes, gradients, large bags, the heatmap row."""

import pytest
import torch
from nystrom_attention import NystromAttention

from pathgen.mil.models import build_model
from pathgen.mil.models.transmil import TransLayer

torch.set_num_threads(1)
KW = dict(hidden_dim=32, dropout=0.0, transmil_heads=4)


def test_uses_nystrom_attention_and_keeps_the_structure():
    m = build_model("transmil", 16, 3, **KW)
    assert isinstance(m.layer1.attn, NystromAttention) and isinstance(m.layer2.attn, NystromAttention)
    assert m.layer1.attn.num_landmarks == 16                          # hidden_dim / 2, as the paper
    assert [c.kernel_size for c in m.ppeg.convs] == [(7, 7), (5, 5), (3, 3)]
    assert m.cls_token.shape == (1, 1, 32)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    m = build_model("transmil", 16, 3, **KW).train()
    out = m(torch.randn(53, 16))                                      # 53 -> 8x8 grid, padded
    assert out["logits"].shape == (1, 3) and out["attention"].shape == (53,)
    m.loss(out, torch.tensor(2)).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_twenty_thousand_patch_bag_forward_backward():
    torch.manual_seed(0)
    m = build_model("transmil", 64, 2, **KW, checkpoint_tokens=4096).train()
    x = torch.randn(20_000, 64)
    out = m(x)
    m.loss(out, torch.tensor(1)).backward()
    assert out["logits"].shape == (1, 2) and torch.isfinite(out["logits"]).all()
    assert out["attention"].shape == (20_000,)
    assert out["attention"].sum().item() == pytest.approx(1.0, abs=1e-4)
    assert m.embed[0].weight.grad is not None and torch.isfinite(m.embed[0].weight.grad).all()


def test_checkpointing_gives_the_same_numbers():
    x = torch.randn(300, 12)

    def run(tokens):
        torch.manual_seed(1)
        m = build_model("transmil", 12, 2, **{**KW, "dropout": 0.2}, checkpoint_tokens=tokens).train()
        out = m(x)
        m.loss(out, torch.tensor(1)).backward()
        return out["logits"].detach(), [p.grad.clone() for p in m.parameters()]

    (a, ga), (b, gb) = run(10**9), run(10)
    assert torch.equal(a, b)
    assert all(torch.allclose(u, v, atol=1e-6) for u, v in zip(ga, gb))


@pytest.mark.parametrize("n", [5, 37, 200])
def test_class_token_row_matches_the_packages_attention_matrix(n):
    torch.manual_seed(n)
    layer = TransLayer(32, 4, 0.0).eval()
    t = torch.randn(1, n, 32)
    with torch.no_grad():
        _, row = layer(t, need_cls_row=True)
        _, full = layer.attn(layer.norm(t), return_attn=True)        # (1, h, T', T'), left-padded
    front = full.shape[-1] - n
    assert torch.allclose(row, full[0, :, front, front:].mean(0), atol=1e-5)


def test_full_attention_baseline_and_bad_kind():
    m = build_model("transmil", 8, 2, **KW, attention="full").eval()
    assert isinstance(m.layer1.attn, torch.nn.MultiheadAttention)
    a = m(torch.randn(10, 8))["attention"]
    assert a.sum().item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="'nystrom' or 'full'"):
        build_model("transmil", 8, 2, **KW, attention="linear")


def _package_forward(self, t, need_cls_row=False):
    """TransLayer.forward before nystrom_forward: the package's own forward (the reference)."""
    q = self.norm(t)
    if not need_cls_row:
        return t + self.attn(q), None
    out, (a1, a2_inv, a3) = self.attn(q, return_attn_matrices=True)
    with torch.no_grad():
        n = t.shape[1]
        front = a1.shape[2] - n
        row = (a1[0, :, front:front + 1] @ a2_inv[0] @ a3[0])[:, 0, front:]
    return t + out, row.mean(0)


@pytest.mark.parametrize("n", [1, 53, 300])
@pytest.mark.parametrize("train", [False, True])
def test_forward_matches_the_packages_forward(monkeypatch, n, train):
    """nystrom_forward keeps fewer tensors for the backward pass, nothing else: logits, heatmap
    and every gradient match the package's forward on the same weights (in training too: the
    dropout draws the same numbers); the residual conv non-zero so its term is compared."""
    x = torch.randn(n, 12, generator=torch.Generator().manual_seed(n))

    def run():
        torch.manual_seed(3)
        m = build_model("transmil", 12, 3, hidden_dim=32, dropout=0.25, transmil_heads=4,
                        checkpoint_tokens=100).train(train)
        for layer in (m.layer1, m.layer2):
            torch.nn.init.normal_(layer.attn.res_conv.weight, std=0.1)
        torch.manual_seed(4)
        out = m(x)
        m.loss(out, torch.tensor(1)).backward()
        return out, {k: p.grad for k, p in m.named_parameters()}

    out, grads = run()
    with monkeypatch.context() as mp:
        mp.setattr(TransLayer, "forward", _package_forward)
        ref, ref_grads = run()
    assert torch.allclose(out["logits"], ref["logits"], atol=1e-5)
    assert torch.allclose(out["attention"], ref["attention"], atol=1e-6)
    for k, g in grads.items():
        assert torch.allclose(g, ref_grads[k], atol=1e-5, rtol=1e-4), k
