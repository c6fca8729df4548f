"""Encoder registry and kinds, built offline from configs (no hub access)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from pathgen.config import validate_config
from pathgen.encoders import EncoderError, KINDS, load_encoder, resolve_device
from pathgen.encoders.registry import builder_for

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return load_encoder("tiny-demo")


def test_tiny_demo_registered_with_open_clip():
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms("pathgen-tiny-vit")
    assert model.visual.image_size in (64, (64, 64))
    assert "pathgen-tiny-vit" in open_clip.list_models()


def test_tiny_encode_shapes_and_norm(tiny):
    assert (tiny.embed_dim, tiny.image_size) == (128, 64)
    assert tiny.identifier == "tiny-demo|open_clip|random-init(seed=0)"
    img = tiny.preprocess(Image.new("RGB", (100, 80), (200, 120, 180)))
    assert img.shape == (3, 64, 64)
    f = tiny.encode_images(torch.stack([img, img * 0.5]))
    t = tiny.encode_texts(["tumor cells", "stroma"])
    assert f.shape == (2, 128) and t.shape == (2, 128)
    assert torch.allclose(f.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(t.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert not torch.allclose(t[0], t[1])
    assert tiny.logit_scale == pytest.approx(1 / 0.07, rel=1e-3)


def test_normalize_uint8_matches_preprocess(tiny):
    rgb = torch.randint(0, 256, (1, 64, 64, 3), dtype=torch.uint8)
    via_pil = tiny.preprocess(Image.fromarray(rgb[0].numpy()))
    assert torch.allclose(tiny.normalize_uint8(rgb)[0], via_pil, atol=1e-5)


def test_random_init_is_reproducible(tiny):
    again = load_encoder("tiny-demo")
    x = torch.randn(2, 3, 64, 64)
    assert torch.allclose(tiny.encode_images(x), again.encode_images(x))


def test_local_checkpoint_and_weights_identity(tiny, tmp_path):
    sd = {k: v + 0.01 for k, v in tiny.model.state_dict().items()}
    ckpt = tmp_path / "epoch_1.pt"
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in sd.items()}}, ckpt)
    enc = load_encoder({"kind": "open_clip", "arch": "pathgen-tiny-vit", "pretrained": str(ckpt)})
    assert enc.weights.startswith("sha256:") and len(enc.weights) == 7 + 16
    x = torch.randn(1, 3, 64, 64)
    tiny.model.load_state_dict(sd)
    try:
        assert torch.allclose(enc.encode_images(x), tiny.encode_images(x), atol=1e-5)
    finally:
        tiny.model.load_state_dict({k: v - 0.01 for k, v in sd.items()})


def test_image_size_override():
    enc = load_encoder({"kind": "open_clip", "arch": "pathgen-tiny-vit", "image_size": 32})
    assert enc.image_size == 32
    assert enc.encode_images(torch.randn(1, 3, 32, 32)).shape == (1, 128)


def test_force_quick_gelu():
    enc = load_encoder({"kind": "open_clip", "arch": "pathgen-tiny-vit", "force_quick_gelu": True})
    acts = {type(m).__name__ for m in enc.model.modules()}
    assert "QuickGELU" in acts


def test_unknown_names_list_alternatives():
    with pytest.raises(EncoderError, match="known encoders: .*tiny-demo"):
        load_encoder("no-such-encoder")
    with pytest.raises(EncoderError, match="known kinds: .*hf_clip.*hf_vision.*open_clip.*timm"):
        builder_for("no_such_kind")
    with pytest.raises(EncoderError, match="unknown open_clip arch"):
        load_encoder({"kind": "open_clip", "arch": "ViT-Nope"})
    with pytest.raises(EncoderError, match="known tags"):
        load_encoder({"kind": "open_clip", "arch": "ViT-B-16", "pretrained": "not-a-tag"})
    with pytest.raises(EncoderError, match="does not exist"):
        load_encoder({"kind": "open_clip", "arch": "ViT-B-16", "pretrained": "/nope/model.pt"})
    assert {"open_clip", "hf_clip", "timm", "hf_vision"} <= set(KINDS)


def test_config_encoders_and_device():
    cfg = validate_config({"demo": {"enabled": True},
                           "encoders": {"mine": {"kind": "open_clip", "arch": "pathgen-tiny-vit",
                                                 "image_size": 48}}})
    assert load_encoder("mine", cfg).image_size == 48
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(EncoderError, match="CUDA is not available"):
            resolve_device("cuda")


def _tiny_hf_clip(folder):
    """A tiny CLIPModel + processor saved like a Hub repo (vocab of printable ASCII)."""
    from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor,
                              CLIPTokenizer)

    chars = [chr(i) for i in range(33, 127)]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    tok = CLIPTokenizer(vocab=vocab, merges=[])
    assert len(set(tok("tumor stroma")["input_ids"])) > 3  # characters, not all <unk>
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                         bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=24)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(folder)
    ip = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=ip, tokenizer=tok).save_pretrained(folder)


def test_hf_clip_from_local_folder(tmp_path):
    _tiny_hf_clip(tmp_path)
    enc = load_encoder({"kind": "hf_clip", "pretrained": str(tmp_path)})
    assert (enc.embed_dim, enc.image_size, enc.kind) == (24, 32, "hf_clip")
    assert enc.weights.startswith("sha256:")
    x = enc.preprocess(Image.new("RGB", (50, 40), (10, 200, 30))).unsqueeze(0)
    assert x.shape == (1, 3, 32, 32)
    f = enc.encode_images(torch.cat([x, -x]))
    t = enc.encode_texts(["tumor", "stroma!"])
    assert f.shape == (2, 24) and t.shape == (2, 24)
    assert torch.allclose(f.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert not torch.allclose(t[0], t[1])
    # the projection really is the model's: compare with transformers directly
    with torch.no_grad():
        ref = enc.model.get_image_features(pixel_values=x)
    ref = ref if isinstance(ref, torch.Tensor) else ref.pooler_output
    assert torch.allclose(f[0], torch.nn.functional.normalize(ref[0], dim=-1), atol=1e-5)
    bigger = load_encoder({"kind": "hf_clip", "pretrained": str(tmp_path), "image_size": 48})
    assert bigger.encode_images(torch.randn(1, 3, 48, 48)).shape == (1, 24)


def test_hf_clip_missing_folder_is_clear(tmp_path):
    with pytest.raises(EncoderError, match="cannot load CLIPModel"):
        load_encoder({"kind": "hf_clip", "pretrained": str(tmp_path)})
    with pytest.raises(EncoderError, match="needs `pretrained`"):
        load_encoder({"kind": "hf_clip"})


# -- hf-hub references: one resolver for encoders and training (no network: a fake hub) ------
@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """huggingface_hub's list/download over an in-memory repo table; records downloads."""
    import huggingface_hub

    repos = {"org/schema": ["open_clip_config.json", "open_clip_model.safetensors"],
             "org/pt": ["README.md", "pathgen-clip.pt"],
             "org/std": ["open_clip_pytorch_model.bin", "other.pt"],
             "org/many": ["a.pt", "b.pt"]}
    got = []

    def list_repo_files(repo, revision=None):
        return repos[repo]

    def hf_hub_download(repo, filename, revision=None):
        if filename not in repos.get(repo, []):
            raise FileNotFoundError(f"{repo}/{filename}")
        got.append((repo, filename))
        path = tmp_path / "snapshots" / "c0ffee" / repo / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"w")
        return str(path)

    monkeypatch.setattr(huggingface_hub, "list_repo_files", list_repo_files)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    return got


def test_hf_hub_resolution(fake_hub):
    from pathgen.encoders.weights import parse_hf_hub, resolve_hf_hub

    assert parse_hf_hub("hf-hub:org/name") == ("org/name", None)
    assert parse_hf_hub("hf-hub:org/name/sub/f.pt") == ("org/name", "sub/f.pt")
    with pytest.raises(EncoderError, match="is not 'hf-hub:org/name'"):
        parse_hf_hub("hf-hub:justone")
    hub = resolve_hf_hub("hf-hub:org/schema")
    assert (hub.kind, hub.target, hub.identity) == ("schema", "hf-hub:org/schema", "hf-hub:org/schema@c0ffee")
    hub = resolve_hf_hub("hf-hub:org/pt")
    assert hub.kind == "file" and hub.target.endswith("org/pt/pathgen-clip.pt")
    assert hub.identity == "hf-hub:org/pt/pathgen-clip.pt@c0ffee"
    assert resolve_hf_hub("hf-hub:org/std").identity == "hf-hub:org/std/open_clip_pytorch_model.bin@c0ffee"
    assert resolve_hf_hub("hf-hub:org/many/b.pt").identity == "hf-hub:org/many/b.pt@c0ffee"
    with pytest.raises(EncoderError, match="cannot choose a checkpoint"):
        resolve_hf_hub("hf-hub:org/many")
    # schema=False (training keeps its own arch): always a file, open_clip's name first.
    hub = resolve_hf_hub("hf-hub:org/schema", schema=False)
    assert hub.kind == "file" and hub.target.endswith("open_clip_model.safetensors")
    with pytest.raises(EncoderError, match="cannot fetch 'hf-hub:org/gone/x.pt'"):
        resolve_hf_hub("hf-hub:org/gone/x.pt")


def test_training_pretrained_uses_the_same_hub_resolver(fake_hub):
    from pathgen.config import ConfigError
    from pathgen.training.models import resolve_pretrained

    assert resolve_pretrained("hf-hub:org/pt", "ViT-B-16").endswith("org/pt/pathgen-clip.pt")
    assert resolve_pretrained("hf-hub:org/std", "ViT-B-16").endswith("open_clip_pytorch_model.bin")
    assert resolve_pretrained("hf-hub:org/many/a.pt", "ViT-B-16").endswith("org/many/a.pt")
    with pytest.raises(ConfigError, match="training.pretrained hf-hub:org/many: .*cannot choose"):
        resolve_pretrained("hf-hub:org/many", "ViT-B-16")


def test_one_list_of_known_encoders():
    from pathgen.config.features import BUILTIN_ENCODERS, known_encoders

    assert set(known_encoders()) == set(BUILTIN_ENCODERS)
    cfg = validate_config({"demo": {"enabled": True},
                           "encoders": {"tiny-demo": {"kind": "open_clip", "arch": "pathgen-tiny-vit",
                                                      "image_size": 32}}})
    assert cfg.all_encoders() == known_encoders(cfg.encoders)
    assert cfg.all_encoders()["tiny-demo"].image_size == 32
