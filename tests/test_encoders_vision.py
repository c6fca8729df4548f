"""Vision-only encoders (issue 21): kinds `timm` and `hf_vision`, the built-in pathology
foundation models, their refusal wherever text is embedded, gated weights, and features ->
MIL with one of them beside a CLIP.

No hub access here: every architecture is built randomly initialised from its entry's own
keyword arguments, with the depth reduced to 2 blocks (the full models have 0.3-1.1 B
parameters); width, heads, patch size, MLP, registers and pooling are the card's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pathgen.config import ConfigError, validate_config
from pathgen.config.features import BUILTIN_ENCODERS, EncoderSpec, known_encoders
from pathgen.encoders import EncoderError, load_encoder
from pathgen_testkit.slide_files import make_svs


torch.set_num_threads(2)
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HOPTIMUS = ((0.707223, 0.578729, 0.703617), (0.211883, 0.230117, 0.177517))
# What each model card documents: embedding dimension, normalisation, input side, the side
# the patch is resized to before the centre crop, µm/px, register tokens, embedding rule.
CARDS = {
    "uni": dict(dim=1024, norm=IMAGENET, size=224, read=224, width=1024, patch=16, regs=0,
                rule="cls", swiglu=False),
    "uni2-h": dict(dim=1536, norm=IMAGENET, size=224, read=224, width=1536, patch=14, regs=8,
                   rule="cls", swiglu=True),
    "virchow2": dict(dim=2560, norm=IMAGENET, size=224, read=224, width=1280, patch=14, regs=4,
                     rule="cls_mean_patch", swiglu=True),
    "h-optimus-0": dict(dim=1536, norm=HOPTIMUS, size=224, read=224, width=1536, patch=14, regs=4,
                        rule="cls", swiglu=True),
    "h-optimus-1": dict(dim=1536, norm=HOPTIMUS, size=224, read=224, width=1536, patch=14, regs=4,
                        rule="cls", swiglu=True),
    "prov-gigapath": dict(dim=1536, norm=IMAGENET, size=224, read=256, width=1536, patch=16, regs=0,
                          rule="cls", swiglu=True),
}


def reduced(name: str, **update) -> EncoderSpec:
    """The built-in entry, randomly initialised with 2 blocks (all other kwargs the card's)."""
    spec = known_encoders()[name]
    return spec.model_copy(update={"pretrained": None,
                                   "model_kwargs": {**spec.model_kwargs, "depth": 2}, **update})


# -- the built-in timm entries -------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CARDS))
def test_builtin_timm_entry_matches_its_card(name):
    card, spec = CARDS[name], known_encoders()[name]
    assert spec.kind == "timm" and spec.pretrained.startswith("hf-hub:") and spec.gated
    assert spec.card.startswith("https://huggingface.co/") and spec.mpp == 0.5
    assert spec.embed_dim == card["dim"] and spec.pooling == card["rule"]
    enc = load_encoder(reduced(name), name=name)
    m = enc.model
    # architecture: the card's width, patch, registers and MLP (depth reduced)
    assert len(m.blocks) == 2 and m.embed_dim == card["width"]
    assert m.patch_embed.patch_size == (card["patch"], card["patch"])
    assert m.num_prefix_tokens == 1 + card["regs"]
    assert (type(m.blocks[0].mlp).__name__ == "GluMlp") == card["swiglu"]
    if card["swiglu"]:
        assert isinstance(m.blocks[0].mlp.act, torch.nn.SiLU)
    # preprocessing
    assert (enc.embed_dim, enc.image_size, enc.read_size) == (card["dim"], card["size"], card["read"])
    assert enc.mean == pytest.approx(card["norm"][0]) and enc.std == pytest.approx(card["norm"][1])
    assert not enc.has_text and enc.kind == "timm" and enc.weights == "random-init(seed=0)"
    # embedding rule, against the card's own computation on the model's tokens
    x = torch.randn(2, 3, 224, 224)
    got = enc.encode_images(x)
    with torch.no_grad():
        tokens = m.forward_features(x)
        out = m.forward_head(tokens)  # = m(x), the card's call, without a second forward pass
        assert tokens.shape[1] == 1 + card["regs"] + (224 // card["patch"]) ** 2
        if card["rule"] == "cls":
            want = tokens[:, 0]
            assert torch.allclose(out, want, atol=1e-5)  # the card's `features = model(x)`
        else:  # Virchow2: concat(class token, mean of patch tokens 5: = without the 4 registers)
            assert out.shape == (2, 261, 1280)  # the card's output: all tokens (global_pool '')
            want = torch.cat([out[:, 0], out[:, 5:].mean(1)], dim=-1)
            with_regs = torch.cat([out[:, 0], out[:, 1:].mean(1)], dim=-1)
            assert not torch.allclose(got, with_regs, atol=1e-4)
    assert got.shape == (2, card["dim"]) and torch.allclose(got, want, atol=1e-5)
    # raw features (the card's output), not L2-normalised
    assert not torch.allclose(got.norm(dim=-1), torch.ones(2), atol=1e-2)


def test_full_size_parameter_counts_match_the_cards():
    """Full depth on the meta device (no memory): 303 M (UNI), 681 M (UNI2-h), 632 M
    (Virchow2), 1.1 B (H-optimus, Prov-GigaPath)."""
    import timm

    from pathgen.encoders.vision import timm_kwargs

    millions = {}
    for name in CARDS:
        spec = known_encoders()[name]
        with torch.device("meta"):
            m = timm.create_model(spec.arch, pretrained=False, **timm_kwargs(name, spec))
        millions[name] = sum(p.numel() for p in m.parameters()) / 1e6
    assert millions["uni"] == pytest.approx(303, abs=2)
    assert millions["uni2-h"] == pytest.approx(681, abs=2)
    assert millions["virchow2"] == pytest.approx(632, abs=2)
    for name in ("h-optimus-0", "h-optimus-1", "prov-gigapath"):
        assert millions[name] == pytest.approx(1134, abs=3)


def test_preprocess_and_uint8_path_agree_with_the_cards_resize_and_crop():
    """Prov-GigaPath: Resize(256) + CenterCrop(224); features read the patch at 256 and crop."""
    enc = load_encoder(reduced("prov-gigapath"), name="prov-gigapath")
    rgb = torch.randint(0, 256, (1, 256, 256, 3), dtype=torch.uint8)
    via_pil = enc.preprocess(Image.fromarray(rgb[0].numpy()))
    assert via_pil.shape == (3, 224, 224)
    assert torch.allclose(enc.normalize_uint8(rgb)[0], via_pil, atol=1e-5)
    assert "256x256, centre crop 224x224" in enc.describe_preprocessing()
    hopt = load_encoder(reduced("h-optimus-0"), name="h-optimus-0")
    rgb = torch.randint(0, 256, (1, 224, 224, 3), dtype=torch.uint8)
    x = hopt.normalize_uint8(rgb)[0]
    want = (rgb[0].permute(2, 0, 1).float() / 255 - torch.tensor(HOPTIMUS[0]).view(3, 1, 1)) \
        / torch.tensor(HOPTIMUS[1]).view(3, 1, 1)
    assert torch.allclose(x, want, atol=1e-5)
    assert torch.allclose(hopt.preprocess(Image.fromarray(rgb[0].numpy())), want, atol=1e-5)


def test_timm_kind_options(tmp_path):
    tiny = {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2,
            "num_classes": 0}
    base = {"kind": "timm", "arch": "vit_small_patch16_224", "model_kwargs": tiny}
    enc = load_encoder({**base, "normalize": True, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]})
    f = enc.encode_images(torch.randn(2, 3, 32, 32))
    assert f.shape == (2, 32) and torch.allclose(f.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert enc.mean == (0.5, 0.5, 0.5) and enc.image_size == 32
    assert load_encoder({**base, "pooling": "cls_mean_patch"}).embed_dim == 64
    again = load_encoder(base)  # seeded random init: reproducible
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(load_encoder(base).encode_images(x), again.encode_images(x))
    # a local weights file goes into `arch` built with the kwargs (strict), identity = sha256
    sd = {k: v + 0.01 for k, v in again.model.state_dict().items()}
    torch.save(sd, tmp_path / "vit.pth")
    loaded = load_encoder({**base, "pretrained": str(tmp_path / "vit.pth")})
    assert loaded.weights.startswith("sha256:")
    assert torch.allclose(loaded.model.pos_embed, sd["pos_embed"])
    with pytest.raises(EncoderError, match="global_pool ''"):
        load_encoder({**base, "model_kwargs": {**tiny, "global_pool": ""}})
    with pytest.raises(EncoderError, match="documents 999-d"):
        load_encoder({**base, "embed_dim": 999})
    with pytest.raises(EncoderError, match="neither in torch.nn nor in timm.layers"):
        load_encoder({**base, "model_kwargs": {**tiny, "mlp_layer": "NoSuchLayer"}})
    with pytest.raises(EncoderError, match="needs `arch`"):
        load_encoder({"kind": "timm"})
    with pytest.raises(ValueError, match="pooling / model_kwargs apply to"):
        EncoderSpec(kind="open_clip", pooling="cls")


def test_new_keys_leave_existing_definitions_unchanged():
    """Rule params and fingerprints dump the spec: a CLIP's dump has no new key, so adding
    the vision keys reran nothing; a vision entry round-trips."""
    for name in ("tiny-demo", "plip", "pathgen-clip"):
        dump = known_encoders()[name].model_dump(mode="json")
        assert set(dump) == {"kind", "arch", "pretrained", "revision", "force_quick_gelu",
                             "image_size", "precision"}
    spec = known_encoders()["virchow2"]
    assert EncoderSpec.model_validate(spec.model_dump(mode="json")) == spec


# -- Phikon-v2: transformers AutoModel -----------------------------------------------------
@pytest.fixture(scope="module")
def phikon_folder(tmp_path_factory):
    """A save_pretrained folder shaped like owkin/phikon-v2 (DINOv2 ViT-L: width 1024, 16
    heads, patch 14), 2 layers, with a processor config (resize 256, crop 224, ImageNet)."""
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    d = tmp_path_factory.mktemp("phikon")
    cfg = Dinov2Config(hidden_size=1024, num_hidden_layers=2, num_attention_heads=16,
                       patch_size=14, image_size=224)
    torch.manual_seed(0)
    Dinov2Model(cfg).save_pretrained(d)
    BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                      do_center_crop=True, image_mean=list(IMAGENET[0]),
                      image_std=list(IMAGENET[1])).save_pretrained(d)
    return d


def test_phikon_v2_entry_cls_token(phikon_folder):
    spec = known_encoders()["phikon-v2"]
    assert (spec.kind, spec.pretrained, spec.pooling, spec.embed_dim) == (
        "hf_vision", "owkin/phikon-v2", "cls", 1024)
    enc = load_encoder(spec.model_copy(update={"pretrained": str(phikon_folder)}), name="phikon-v2")
    assert (enc.kind, enc.embed_dim, enc.image_size, enc.read_size) == ("hf_vision", 1024, 224, 256)
    assert enc.mean == pytest.approx(IMAGENET[0]) and enc.weights.startswith("sha256:")
    assert not enc.has_text
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want = enc.model(pixel_values=x).last_hidden_state[:, 0, :]  # the card's features
    assert torch.allclose(enc.encode_images(x), want, atol=1e-5)
    with pytest.raises(EncoderError, match="vision-only.*pathgen-clip or plip"):
        enc.encode_texts(["tumour"])


def test_hf_vision_random_init_and_registers():
    enc = load_encoder({"kind": "hf_vision", "arch": "dinov2_with_registers",
                        "pooling": "cls_mean_patch",
                        "model_kwargs": {"hidden_size": 32, "num_hidden_layers": 1,
                                         "num_attention_heads": 2, "intermediate_size": 64,
                                         "image_size": 28, "patch_size": 14,
                                         "num_register_tokens": 4}})
    x = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        h = enc.model(pixel_values=x).last_hidden_state
    assert h.shape[1] == 1 + 4 + 4
    want = torch.cat([h[:, 0], h[:, 5:].mean(1)], dim=-1)
    assert enc.embed_dim == 64 and torch.allclose(enc.encode_images(x), want, atol=1e-5)


# -- gated weights -------------------------------------------------------------------------
def _gated(url: str):
    import httpx2
    from huggingface_hub.errors import GatedRepoError

    resp = httpx2.Response(401, request=httpx2.Request("GET", url))
    return GatedRepoError("401 Client Error. Cannot access gated repo", response=resp)


def test_gated_timm_weights_name_the_page_and_the_token(monkeypatch):
    import timm

    def refuse(name, **kw):
        raise RuntimeError("download failed") from _gated(f"https://huggingface.co/{name}")

    monkeypatch.setattr(timm, "create_model", refuse)
    with pytest.raises(EncoderError) as err:
        load_encoder("uni")
    msg = str(err.value)
    assert "https://huggingface.co/MahmoodLab/UNI" in msg and "HF_TOKEN" in msg
    assert "MahmoodLab/uni" in msg and "gated" in msg


def test_gated_hf_vision_weights(monkeypatch):
    from transformers import AutoModel

    def refuse(*a, **kw):
        raise OSError("You are trying to access a gated repo.") from _gated("https://huggingface.co/x")

    monkeypatch.setattr(AutoModel, "from_pretrained", refuse)
    with pytest.raises(EncoderError, match="https://huggingface.co/owkin/phikon-v2.*HF_TOKEN"):
        load_encoder("phikon-v2")


def test_doctor_wants_hf_token_for_a_configured_gated_encoder(monkeypatch, tmp_path):
    import huggingface_hub

    from pathgen.doctor import encoder_weights_check

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    task = {"t": {"labels": str(tmp_path / "l.csv"), "classes": ["a", "b"]}}
    cfg = validate_config({"demo": {"enabled": True}, "tiling": {"patch_size_um": 112},
                           "evaluation": {"mil": {"encoders": ["tiny-demo", "virchow2"],
                                                  "tasks": task}}})
    ok, msg = encoder_weights_check(cfg, env={})
    assert not ok and "HF_TOKEN" in msg and "https://huggingface.co/paige-ai/Virchow2" in msg
    ok, msg = encoder_weights_check(cfg, env={"HF_TOKEN": "hf_x"})
    assert ok and "virchow2" in msg and "µm/px" not in msg  # 112 µm = 224 px at 0.5 µm/px
    assert encoder_weights_check(validate_config({"demo": {"enabled": True}}), env={}) is None
    # features.encoder counts too; a mismatched magnification is noted, never fatal
    uni = validate_config({"demo": {"enabled": True}, "features": {"encoder": "uni"},
                           "selection": {"prompt_top_k": 0},
                           "tiling": {"preset": None, "patch_size_um": 256, "target_mpp": 0.5}})
    ok, msg = encoder_weights_check(uni, env={"HF_TOKEN": "hf_x"})
    assert ok and "1.14 µm/px" in msg and "tiling.patch_size_um: 112" in msg


# -- refusals where text is embedded -------------------------------------------------------
REFUSED = [
    ({"features": {"encoder": "uni"}}, "features.encoder is 'uni'"),
    ({"selection": {"text_encoder": "virchow2"}}, "selection.text_encoder is 'virchow2'"),
    ({"evaluation": {"zeroshot": {"models": ["plip", "h-optimus-0"]}}},
     "evaluation.zeroshot.models[1] is 'h-optimus-0'"),
    ({"captioning": {"filters": {"alignment_encoder": "phikon-v2"}}},
     "captioning.filters.alignment_encoder is 'phikon-v2'"),
    ({"encoders": {"mine": {"kind": "timm", "arch": "vit_small_patch16_224"}},
      "selection": {"text_encoder": "mine"}}, "selection.text_encoder is 'mine'"),
]


@pytest.mark.parametrize("update,where", REFUSED)
def test_text_uses_refuse_vision_only_encoders(update, where):
    with pytest.raises(ConfigError) as err:
        validate_config({"demo": {"enabled": True}, **update})
    msg = str(err.value)
    assert where in msg and "no text tower" in msg and "pathgen-clip or plip" in msg


def test_vision_only_encoders_serve_features_and_mil():
    from pathgen.zeroshot.workflow import model_names

    cfg = validate_config({"demo": {"enabled": True}, "features": {"encoder": "uni"},
                           "selection": {"prompt_top_k": 0},
                           "evaluation": {"mil": {"encoders": ["uni", "virchow2", "pathgen-clip"]},
                                          "zeroshot": {"models": []}}})
    assert cfg.features.encoder == "uni"
    assert model_names(cfg) == [cfg.training.register_as]  # not the vision-only features encoder
    validate_config({"demo": {"enabled": True}, "selection": {"text_encoder": "pathgen-clip"}})


def test_every_builtin_states_kind_and_vision_entries_their_card():
    for name, raw in BUILTIN_ENCODERS.items():
        spec = EncoderSpec(**raw)
        if not spec.has_text:
            assert spec.card and spec.embed_dim and spec.mpp, name


def test_encoders_listing_shows_kind_dim_and_mpp():
    from pathgen.features.cli import encoders_table

    text = encoders_table(validate_config({"demo": {"enabled": True}}))
    rows = {ln.split()[0] if not ln.startswith("*") else ln.split()[1]: ln for ln in text.splitlines()}
    assert rows["virchow2"].split()[1:5] == ["timm", "2560", "0.5", "no"]
    assert rows["phikon-v2"].split()[1:5] == ["hf_vision", "1024", "0.5", "no"]
    assert "(gated)" in rows["uni2-h"] and "(gated)" not in rows["phikon-v2"]
    assert rows["plip"].split()[1:5] == ["hf_clip", "-", "-", "yes"]


# -- features -> MIL: a registered vision encoder beside the features CLIP ------------------
N_SLIDES = 8


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """8 small SVS slides at 0.5 µm/px, 2 classes; config with a registered reduced UNI."""
    root = tmp_path_factory.mktemp("vision_mil")
    slides = root / "slides"
    slides.mkdir()
    rows = []
    for i in range(N_SLIDES):
        make_svs(slides / f"s{i}.svs", 480, 480, levels=(1,), seed=i)
        rows.append({"case_id": f"c{i}", "slide_id": f"s{i}", "label": "a" if i % 2 else "b"})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    uni = reduced("uni").model_dump(mode="json")
    cfg = validate_config({
        "results_dir": str(root / "results"), "slides": {"dir": str(slides)},
        "tiling": {"patch_size_um": 112, "target_mpp": 0.5},
        "features": {"encoder": "tiny-demo", "device": "cpu", "batch_size": 4, "num_workers": 0},
        "encoders": {"uni-small": uni},
        "evaluation": {"mil": {
            "encoders": ["tiny-demo", "uni-small"], "models": ["abmil"], "epochs": 2,
            "hidden_dim": 16, "attn_dim": 8, "heatmap_slides": 0, "device": "cpu",
            "tasks": {"t": {"labels": str(root / "labels.csv"), "classes": ["a", "b"],
                            "folds": 2, "val_fraction": 0.25}}}}})
    return root, cfg


def test_features_then_mil_with_a_vision_encoder(cohort):
    from pathgen.features import read_features
    from pathgen.features.extract import extract_features
    from pathgen.mil.results_table import write_table
    from pathgen.mil.workflow import config_task_splits, task_benchmark
    from pathgen.paths import Layout
    from pathgen.tiling.h5io import coords_attrs, write_coords

    root, cfg = cohort
    L = Layout(cfg)
    encoders = {e: load_encoder(e, cfg, "cpu", name=e) for e in cfg.evaluation.mil.encoders}
    xy = np.array([[0, 0], [224, 0], [0, 224], [224, 224]])
    for i in range(N_SLIDES):
        sid = f"s{i}"
        attrs = coords_attrs(name=sid, save_dir=L.coords_dir(), mpp=0.5, mpp_source="test",
                             target_mpp=0.5, patch_size_um=112.0, patch_size=224,
                             patch_size_level0=224, level0_dims=(480, 480))
        write_coords(L.coords(sid), xy, attrs)
        for name, enc in encoders.items():
            extract_features(root / "slides" / f"{sid}.svs", L.coords(sid), L.features(sid, name),
                             enc, cfg.features)
    feats, _, attrs = read_features(L.features("s0", "uni-small"))
    assert feats.shape == (4, 1024) and attrs["encoder_kind"] == "timm"
    assert '"mean": [0.485, 0.456, 0.406]' in attrs["preprocessing"]
    x = encoders["uni-small"].normalize_uint8(torch.from_numpy(_patches(root / "slides" / "s0.svs")))
    assert np.allclose(feats, encoders["uni-small"].encode_images(x).numpy(), atol=1e-3)

    config_task_splits(cfg, "t")
    metrics = []
    for name in encoders:
        s = task_benchmark(cfg, "t", name, "abmil", device="cpu")
        assert s["encoder"] == name and s["n_folds"] == 2
        metrics.append(L.mil_metrics("t", name, "abmil")["metrics"])
    df = write_table(metrics, root / "t.csv", root / "t.md")
    assert sorted(df.encoder) == ["tiny-demo", "uni-small"]
    md = (root / "t.md").read_text()
    head = next(ln for ln in md.splitlines() if ln.startswith("| Task"))
    assert "tiny-demo · Macro AUROC" in head and "uni-small · Macro AUROC" in head
    assert head.index("tiny-demo · Accuracy") < head.index("uni-small · Accuracy")


def _patches(slide: Path) -> np.ndarray:
    import openslide

    with openslide.OpenSlide(str(slide)) as s:
        return np.stack([np.asarray(s.read_region((x, y), 0, (224, 224)).convert("RGB"))
                         for x, y in [(0, 0), (224, 0), (0, 224), (224, 224)]])


def test_workflow_extracts_features_of_registered_mil_encoders(cohort):
    from pathgen.doctor import submitted_rules
    from pathgen.mil.workflow import encoder_feature_params, registered_feature_encoders

    _, cfg = cohort
    assert registered_feature_encoders(cfg) == ["uni-small"]
    p = encoder_feature_params(cfg, "uni-small")
    assert p["settings"]["encoder"] == "uni-small"
    assert p["settings"]["encoder_spec"]["kind"] == "timm"
    assert "features_uni-small" in p["files"]["features"] and p["upstream"] == "tile"
    assert "extract_encoder_features" in submitted_rules(cfg)


def test_dag_extracts_a_registered_mil_encoders_features(tmp_path):
    """Snakemake dry run: evaluation.mil.encoders [tiny-demo, uni] -> rule
    extract_encoder_features per chunk for uni (features_uni/), one mil job per encoder."""
    from pathgen_testkit.workspace import fake_slide_workspace, parse_jobs

    (tmp_path / "labels.csv").write_text(
        "case_id,slide_id,label\nc0,TCGA-FAKE-00000,a\nc1,TCGA-FAKE-00001,b\n")
    mil = {"tasks": {"t": {"labels": str(tmp_path / "labels.csv"), "classes": ["a", "b"],
                           "folds": 2}}, "models": ["abmil"], "encoders": ["tiny-demo", "uni"]}
    ws = fake_slide_workspace(tmp_path / "ws", 2, cluster={"chunk_size": 2},
                              features={"encoder": "tiny-demo"},
                              training={"enabled": False}, evaluation={"mil": mil})
    jobs = parse_jobs(ws.dry_run(quiet=False).text)
    got = {(r, wc.get("encoder")) for r, wc, _ in jobs
           if r in ("extract_features", "extract_encoder_features", "mil")}
    assert got == {("extract_features", None), ("extract_encoder_features", "uni"),
                   ("mil", "tiny-demo"), ("mil", "uni")}
