"""Prompts, token budget, filters, morphometric baseline and the per-slide stage (the
morphometric backend named: the built-in default is `openai`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pathgen.captioning import filters as F
from pathgen.captioning.budget import TokenBudget, split_sentences
from pathgen.captioning.prompts import PromptError, load_templates
from pathgen.captioning.store import PartialStore
from pathgen.config.captioning import CaptioningConfig, FiltersConfig, MorphometricConfig
from pathgen_testkit.patches import synth_patch, write_selection


BUDGET = TokenBudget("ViT-B-16", 77)
LONG = ("Sheets of tumour cells with enlarged vesicular nuclei and prominent nucleoli fill the "
        "field. The stroma between nests is desmoplastic with plump fibroblasts and scattered "
        "lymphocytes, plasma cells and a few eosinophils. Glandular lumina contain mucin and "
        "necrotic debris, and there are frequent mitotic figures including atypical forms. "
        "Vascular spaces are congested and focally haemorrhagic.")


# -- prompts ----------------------------------------------------------------------------------
def test_templates_render_and_hash(tmp_path):
    t = load_templates("v1")
    text = t.render("revise", description="Dense nuclei.")
    assert "Dense nuclei." in text and "$description" not in text
    assert "Dense nuclei." in t.render("summarize", description="Dense nuclei.", budget=77, max_words=50)
    with pytest.raises(PromptError, match="max_words"):
        t.render("summarize", description="x")  # missing value names the placeholder
    # a user template overrides the packaged one and changes hash, prompt_hash and tag
    (tmp_path / "describe.v1.txt").write_text("Describe this H&E patch ($field_um µm, $mpp).")
    t2 = load_templates("v1", tmp_path)
    assert t2.hash() != t.hash()
    a = CaptioningConfig(backend="morphometric")
    b = CaptioningConfig(backend="morphometric", prompts_dir=tmp_path)
    assert a.prompt_hash() != b.prompt_hash() and a.tag() != b.tag()
    assert a.tag() == CaptioningConfig(backend="morphometric").tag()  # stable
    assert a.tag().startswith("morphometric-")
    # filters do not shape captions -> same tag; token budget does
    assert CaptioningConfig(backend="morphometric", filters=FiltersConfig(min_words=3)).tag() == a.tag()
    assert CaptioningConfig(backend="morphometric", token_budget=64).tag() != a.tag()
    with pytest.raises(PromptError, match="no prompt template"):
        load_templates("v999")


# -- token budget -----------------------------------------------------------------------------
def test_budget_counts_with_real_tokenizer():
    import open_clip

    tok = open_clip.get_tokenizer("ViT-B-16")
    ids = tok([LONG])[0]
    # the tokenizer's own truncation point agrees with our count (SOT/EOT included)
    assert BUDGET.count(LONG) > 77 and int((ids != 0).sum()) == 77
    short = "Fibrous stroma with sparse spindle nuclei."
    assert BUDGET.count(short) == int((tok([short])[0] != 0).sum())


def test_budget_truncates_at_sentence_boundary():
    cut = BUDGET.truncate(LONG)
    assert BUDGET.count(cut) <= 77 and cut.endswith(".")
    assert LONG.startswith(cut)  # whole sentences, in order
    assert len(split_sentences(cut)) < len(split_sentences(LONG))
    one = "Tumour cells " + ", ".join(f"feature {i}" for i in range(60)) + "."
    cut1 = TokenBudget("ViT-B-16", 30).truncate(one)
    assert 0 < TokenBudget("ViT-B-16", 30).count(cut1) <= 30 and cut1.endswith(".")


# -- filters: one test per reason ------------------------------------------------------------
def _rec(caption, describe=None, revise=None, status="ok"):
    d = describe or "Dense tumour epithelium with enlarged nuclei and fibrous stroma."
    return {"status": status, "caption": caption, "describe": d, "revise": revise or d}


FC = FiltersConfig()
GOOD = "Tumour-like epithelium with crowded, enlarged and pleomorphic nuclei in a fibrous stroma."


@pytest.mark.parametrize("rec,reason", [
    (_rec(GOOD, status="failed"), "failed"),
    (_rec("   "), "empty"),
    (_rec("Dense tumour."), "too_short"),
    (_rec(LONG), "over_budget"),
    (_rec("As an AI language model, I cannot determine the tissue type in this image."), "refusal"),
    (_rec("Эпителий опухоли с крупными ядрами и фиброзной стромой в поле зрения образца."), "non_english"),
    (_rec("xq zzv ptk wqq rrm bzz kkv qpt vvx mmw"), "non_english"),
    (_rec("Tumour cells with nuclei, tumour cells with nuclei, tumour cells with nuclei and "
          "tumour cells with nuclei in the stroma."), "repeated_ngrams"),
    (_rec("Tumour epithelium with enlarged nuclei and extensive necrosis in a fibrous stroma.",
          describe="Tumour epithelium with enlarged nuclei. Extensive necrosis is present. "
                   "The stroma is fibrous.",
          revise="Tumour epithelium with enlarged nuclei. The stroma is fibrous."),
     "contradicts_revision"),
])
def test_filter_reasons(rec, reason):
    assert reason in F.text_reasons(rec, FC, BUDGET)


def test_good_caption_passes_filters():
    assert F.text_reasons(_rec(GOOD), FC, BUDGET) == []
    recs = [_rec(GOOD), _rec("")]
    F.apply_filters(recs, FC, BUDGET)
    assert [r["accepted"] for r in recs] == [True, False]


def test_alignment_filter(monkeypatch):
    monkeypatch.setattr(F, "alignment_scores", lambda paths, caps, enc, spec=None: [0.9, 0.01])
    recs = [_rec(GOOD), _rec(GOOD)]
    F.apply_filters(recs, FiltersConfig(alignment_encoder="tiny-demo", min_alignment=0.1),
                    BUDGET, image_paths=["a.jpg", "b.jpg"])
    assert recs[0]["accepted"] and recs[1]["reject_reasons"] == ["low_alignment"]


def test_caption_slide_alignment_with_a_resolved_spec_only(tmp_path):
    """The alignment filter runs on the section + a resolved spec of a config-defined encoder
    (a name no built-in has): no whole config is needed, the spec alone builds the CLIP."""
    from pathgen.captioning.stage import caption_slide
    from pathgen.config.features import EncoderSpec

    csv_path, patches = write_selection(tmp_path, kinds=("tumour", "stroma"))
    ccfg = CaptioningConfig(backend="morphometric", concurrency=2,
                            filters={"alignment_encoder": "my-ref-clip", "min_alignment": -1.0})
    out = tmp_path / "captions" / "slide_a.jsonl"
    spec = EncoderSpec(arch="pathgen-tiny-vit", pretrained=None)
    summary = caption_slide(csv_path, patches, out, ccfg, target_mpp=0.5, alignment_spec=spec)
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    scores = [r["provenance"]["alignment"] for r in recs]
    assert len(scores) == 2 and all(-1.0 <= s <= 1.0 for s in scores) and summary["n_accepted"] == 2
    # without the spec the name is looked up among the built-ins, and the error names it
    from pathgen.encoders import EncoderError

    with pytest.raises(EncoderError, match="my-ref-clip"):
        caption_slide(csv_path, patches, tmp_path / "c2" / "slide_a.jsonl", ccfg, target_mpp=0.5)


# -- morphometric baseline --------------------------------------------------------------------
def test_morphometric_tumor_vs_stroma():
    from pathgen.captioning.backends.morphometric import classify
    from pathgen.captioning.morphometry import measure_patch

    t = MorphometricConfig()
    tum, stro = measure_patch(synth_patch("tumour"), 0.5), measure_patch(synth_patch("stroma"), 0.5)
    assert tum.nuclei_per_mm2 > 3 * stro.nuclei_per_mm2
    assert tum.nuclear_area_um2 > stro.nuclear_area_um2 and tum.area_cv > stro.area_cv
    assert classify(tum, t).tissue == "tumor" and classify(stro, t).tissue == "stroma"
    # density is per mm² of tissue, from the mpp (256 px at 0.5 µm/px = 0.0164 mm²)
    assert tum.tissue_fraction > 0.99
    assert tum.nuclei_per_mm2 == pytest.approx(tum.nuclei / (256 * 256 * 0.25e-6), rel=0.01)
    lym = measure_patch(synth_patch("lymphoid"), 0.5)
    assert classify(lym, t).tissue == "lymphocytes"
    assert classify(measure_patch(synth_patch("adipose"), 0.5), t).tissue == "adipose"


def test_morphometric_revise_drops_contradictions():
    from pathgen.captioning.backends.morphometric import describe_measurements, revise_against
    from pathgen.captioning.morphometry import measure_patch

    t = MorphometricConfig()
    m = measure_patch(synth_patch("tumour"), 0.5)
    desc = describe_measurements(m, t)
    assert revise_against(desc, m, t) == desc  # its own description is consistent
    injected = ("Nuclear density is low, with few nuclei. Extensive necrosis is present. "
                "Mature adipocytes fill most of the field. Nuclei are small and uniform.")
    revised = revise_against(desc + " " + injected, m, t)
    assert revised == desc


# -- store + stage ----------------------------------------------------------------------------
def test_partial_store_cuts_torn_line(tmp_path):
    p = tmp_path / "s.partial.jsonl"
    p.write_text(json.dumps({"x": 1, "y": 2, "status": "ok", "prompt_hash": "h"}) + "\n"
                 + '{"x": 3, "y": 4, "sta')
    with PartialStore(p) as st:
        assert st.done("h") == {(1, 2)}
        st.append({"x": 3, "y": 4, "status": "ok", "prompt_hash": "h"})
    lines = p.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x) for x in lines)


def test_stage_morphometric_end_to_end(tmp_path):
    from pathgen.captioning.stage import caption_slide

    csv_path, patches = write_selection(tmp_path, kinds=("tumour", "stroma", "blank"))
    out = tmp_path / "captions" / "slide_a.jsonl"
    summary = caption_slide(csv_path, patches, out, CaptioningConfig(backend="morphometric", concurrency=2),
                            target_mpp=0.5)
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    keys = ["slide_id", "x", "y", "level", "size", "mpp", "image", "backend", "model",
            "prompt_hash", "describe", "revise", "caption", "revise_changed", "revise_edit_ratio",
            "n_tokens", "timings", "attempts", "status", "error", "accepted", "reject_reasons"]
    assert all(set(keys) <= set(r) for r in recs) and len(recs) == 3
    assert [(r["x"], r["y"]) for r in recs] == [(0, 1024), (512, 1024), (1024, 1024)]
    assert all(r["n_tokens"] <= 77 for r in recs)
    assert recs[0]["caption"].startswith("Crowded, enlarged, pleomorphic nuclei") and recs[0]["accepted"]
    assert "too_short" in recs[2]["reject_reasons"]  # blank patch: "Mostly background ..."
    rejects = [json.loads(x) for x in (tmp_path / "captions" / "slide_a.rejects.jsonl").read_text().splitlines()]
    assert [(r["x"]) for r in rejects] == [1024]
    s = json.loads((tmp_path / "captions" / "slide_a.summary.json").read_text())
    assert s == summary and s["n_accepted"] == 2 and s["reject_reasons"]["too_short"] == 1
    # rerun: nothing recaptioned, same output
    s2 = caption_slide(csv_path, patches, out, CaptioningConfig(backend="morphometric", concurrency=2), target_mpp=0.5)
    assert s2["captioned_this_run"] == 0 and s2["n_accepted"] == 2


def test_selection_errors(tmp_path):
    from pathgen.captioning.items import SelectionError, read_selection

    csv_path, patches = write_selection(tmp_path, kinds=("tumour",))
    with pytest.raises(SelectionError, match="missing"):
        read_selection(csv_path, tmp_path / "nowhere")
    bad = tmp_path / "bad.csv"
    bad.write_text("slide_id,x\nslide_a,1\n")
    with pytest.raises(SelectionError, match="lacks columns"):
        read_selection(bad, patches)
    # per-slide folder accepted as well as the patches root
    assert read_selection(csv_path, patches / "slide_a")[0].path.is_file()


_KILL_SCRIPT = """
import sys, time
from pathgen.captioning.backends.morphometric import MorphometricBackend
from pathgen.captioning.stage import caption_slide
from pathgen.config.captioning import CaptioningConfig
cfg = CaptioningConfig(backend="morphometric", concurrency=1)
class Slow(MorphometricBackend):
    async def summarize(self, d, p, b):
        import asyncio; await asyncio.sleep(0.3)
        return await super().summarize(d, p, b)
caption_slide(sys.argv[1], sys.argv[2], sys.argv[3], cfg, 0.5, backend=Slow(cfg.morphometric))
"""


@pytest.mark.slow  # a subprocess imports torch/open_clip (~20-40 s on a busy machine)
def test_resume_after_kill(tmp_path):
    from pathgen.captioning.stage import caption_slide

    n = 10
    csv_path, patches = write_selection(tmp_path, kinds=("tumour", "stroma"), n=n)
    out = tmp_path / "cap" / "slide_a.jsonl"
    partial = tmp_path / "cap" / "slide_a.partial.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(csv_path), str(patches), str(out)])
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if partial.exists() and len(partial.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(partial.read_bytes().split(b"\n")) - 1
    assert 3 <= done_before < n and not out.exists()
    summary = caption_slide(csv_path, patches, out, CaptioningConfig(backend="morphometric", concurrency=2),
                            target_mpp=0.5)
    keys = [(json.loads(x)["x"], json.loads(x)["y"]) for x in out.read_text().splitlines()]
    assert len(keys) == n == len(set(keys))                      # zero lost, zero duplicated
    assert summary["captioned_this_run"] == n - done_before        # done work not redone
    assert len(partial.read_text().splitlines()) == n


def test_cli_caption(tmp_path, capsys):
    from pathgen.cli import main

    csv_path, patches = write_selection(tmp_path, kinds=("tumour", "lymphoid"))
    out = tmp_path / "c" / "slide_a.jsonl"
    rc = main(["caption", str(csv_path), "--patches-dir", str(patches), "--out", str(out),
               "--backend", "morphometric", "--mpp", "0.5", "--concurrency", "2"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["n_accepted"] == 2
    assert len(out.read_text().splitlines()) == 2
    assert main(["caption", str(csv_path), "--patches-dir", str(patches), "--out", str(out),
                 "--backend", "morphometric", "--model", "x"]) == 2  # config error, named


def test_synth_patch_kinds_differ():
    a, b = synth_patch("tumour"), synth_patch("stroma")
    assert a.shape == (256, 256, 3) and a.dtype == np.uint8
    assert a.mean() < b.mean()  # more dark nuclei in the tumour-like patch
