"""Selection stage: math, prompts file, report findings, one-slide outputs."""

from __future__ import annotations

import csv
import json
import math

import h5py
import numpy as np
import pytest
import tifffile
from PIL import Image

from pathgen.config import ConfigError, PathgenConfig
from pathgen.config.features import EncoderSpec
from pathgen.config.selection import SelectionConfig
from pathgen.selection import vectors
from pathgen.selection import reports as rep
from pathgen.selection.prompts import cancer_type_of, load_prompt_book
from pathgen.selection.runner import SelectionModels, run_selection, slide_prompts
from pathgen.selection.select import CSV_COLUMNS, read_selection, select_slide
from pathgen_testkit.feature_files import write_features_file  # 64 px, 128 px at level 0 by default


def blobs(n_per=20, centers=4, dim=16, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim))
    x = np.concatenate([c[i] + spread * rng.normal(size=(n_per, dim)) for i in range(centers)])
    return x.astype(np.float32), np.repeat(np.arange(centers), n_per)


# -- math -------------------------------------------------------------------------------
@pytest.mark.parametrize("n,factor,k", [(0, 1.6, 0), (1, 1.6, 1), (2, 1.6, 2), (3, 1.6, 3),
                                        (100, 1.6, 13), (10000, 1.6, 127), (50, 0.5, 5)])
def test_choose_k(n, factor, k):
    assert vectors.choose_k(n, factor) == k
    assert vectors.choose_k(n, factor) <= max(n, 0)


def test_quota():
    assert vectors.per_cluster_quota(13, 256) == 19
    assert vectors.per_cluster_quota(300, 256) == 1
    assert vectors.per_cluster_quota(0, 256) == 0


def test_kmeans_order_round_robin_and_centrality():
    x, truth = blobs(n_per=30, centers=4)
    res = vectors.kmeans_prototypes(x, factor=1.6, seed=0)
    assert res.k == math.ceil(math.sqrt(1.6 * 120))  # 14
    assert sorted(res.order) == list(range(120))  # every patch, once
    first = res.prototypes(res.k)
    assert len(set(res.labels[first])) == res.k  # one per cluster in the first round
    # every first-round member is the most central member of its cluster
    for i in first:
        members = np.flatnonzero(res.labels == res.labels[i])
        assert res.centroid_cos[i] == pytest.approx(res.centroid_cos[members].max())
    per = np.bincount(res.labels[res.prototypes(20)], minlength=res.k)
    assert per.max() - per[per > 0].min() <= 1 or per.max() <= 2  # ~cap / k per cluster


def test_kmeans_largest_clusters_win_when_k_exceeds_cap():
    x, _ = blobs(n_per=50, centers=5, spread=0.3)
    res = vectors.kmeans_prototypes(x, factor=1.6, seed=0)
    picked = res.prototypes(3)
    assert res.k > 3 and len(picked) == 3
    sizes = np.bincount(res.labels, minlength=res.k)
    picked_sizes = sorted(sizes[res.labels[picked]], reverse=True)
    assert picked_sizes == sorted(sizes, reverse=True)[:3]  # the largest clusters win


def test_kmeans_deterministic():
    x, _ = blobs(n_per=25, centers=6, spread=0.4, seed=3)
    a = vectors.kmeans_prototypes(x, seed=7)
    b = vectors.kmeans_prototypes(x, seed=7)
    assert a.order == b.order and np.array_equal(a.labels, b.labels)


def test_empty_and_single():
    empty = np.zeros((0, 8), np.float32)
    kept, stats = vectors.select(empty, np.ones((2, 8), np.float32), ["a", "b"], top_k=3, factor=1.6,
                            cap=256, seed=0, n_init=2, dedupe_cosine=0.95)
    assert kept == [] and stats["k"] == 0
    one = np.ones((1, 8), np.float32)
    kept, stats = vectors.select(one, np.ones((2, 8), np.float32), ["a", "b"], top_k=3, factor=1.6,
                            cap=256, seed=0, n_init=2, dedupe_cosine=0.95)
    assert stats["k"] == 1 and len(kept) == 1 and kept[0].source == vectors.SOURCE_BOTH


def test_topk_per_prompt():
    scores = np.array([[9, 0], [8, 1], [7, 5], [1, 6], [0, 7]], np.float32)
    hits = vectors.topk_per_prompt(scores, 2)
    assert set(hits) == {0, 1, 3, 4}
    assert hits[0] == (0, 9.0) and hits[4] == (1, 7.0)
    hits3 = vectors.topk_per_prompt(scores, 3)
    assert hits3[2] == (0, 7.0)  # picked by both prompts, keeps the higher score
    assert vectors.topk_per_prompt(scores, 0) == {}
    assert len(vectors.topk_per_prompt(scores, 100)) == 5


def test_prompt_scores_scale():
    e = np.eye(3, dtype=np.float32)
    s = vectors.prompt_scores(e * 5, e[:2])
    assert s[0, 0] == pytest.approx(100.0) and s[2, 1] == pytest.approx(0.0)


def test_dedupe_threshold():
    base = np.array([1, 0, 0, 0], np.float32)
    near = np.array([1, 0.1, 0, 0], np.float32)      # cosine 0.995 to base
    far = np.array([0, 1, 0, 0], np.float32)
    emb = np.stack([base, near, far])
    cands = [vectors.Candidate(i, vectors.SOURCE_PROMPT, 1.0) for i in range(3)]
    assert [c.index for c in vectors.dedupe(cands, emb, 0.95)] == [0, 2]
    assert [c.index for c in vectors.dedupe(cands, emb, 0.999)] == [0, 1, 2]
    assert len(vectors.dedupe(cands, emb, 1.0)) == 3


def test_pool_precedence_and_provenance():
    x, _ = blobs(n_per=5, centers=2)
    clusters = vectors.kmeans_prototypes(x, factor=0.5, seed=0)
    proto = clusters.order[0]
    other = clusters.order[-1]
    pool = vectors.candidate_pool({proto: (0, 50.0), other: (1, 40.0)}, ["p0", "p1"], None, clusters)
    assert [c.index for c in pool[:2]] == [proto, other]  # prompt hits first
    assert sorted(c.index for c in pool) == list(range(10))
    res = vectors.fill(pool, x, cap=4, threshold=1.0, min_keep=0, clusters=clusters)
    by = {c.index: c for c in res.kept}
    assert len(res.kept) == 4
    assert by[proto].source == vectors.SOURCE_BOTH and by[proto].prompt == "p0"
    assert by[other].source == vectors.SOURCE_PROMPT and by[other].prompt == "p1"
    assert all(c.source == vectors.SOURCE_CLUSTER for c in res.kept if c.index not in (proto, other))


def test_dimension_mismatch_is_explained():
    with pytest.raises(ValueError, match="same CLIP"):
        vectors.select(np.ones((3, 8), np.float32), np.ones((1, 4), np.float32), ["a"], top_k=1,
                  factor=1.6, cap=8, seed=0, n_init=1, dedupe_cosine=0.95)


# -- prompts file --------------------------------------------------------------------------
def test_shipped_prompts_file():
    book = load_prompt_book()
    for code in ["generic", "LUAD", "LUSC", "BRCA", "COADREAD", "PRAD", "KIRC", "SKCM", "STAD",
                 "HNSC", "UCEC", "LIHC", "GBMLGG", "BLCA", "THCA", "OV"]:
        assert len(book.types[code].prompts) >= 15, code
    assert book.resolve("TCGA-COAD") == "COADREAD" and book.resolve("read") == "COADREAD"
    assert book.resolve("lgg") == "GBMLGG" and book.resolve(None) == "generic"
    assert book.resolve("TCGA-XYZ") == "generic"
    with pytest.raises(ConfigError, match="TCGA-XYZ"):
        book.resolve("TCGA-XYZ", "error")
    luad = book.prompts_for("LUAD", include_generic=True)
    assert len(luad) == len(set(luad)) > 20


@pytest.mark.parametrize("text,match", [
    ("cancer_types: {LUAD: {prompts: [a]}}", "generic"),
    ("cancer_types: {generic: {prompts: []}}", "non-empty list"),
    ("cancer_types: {generic: {prompts: [a], aliases: [x]}, B: {prompts: [b], aliases: [X]}}",
     "already used"),
    ("cancer_types: {generic: {prompts: [a], colour: red}}", "unknown keys"),
    ("[1, 2", "not valid YAML"),
])
def test_bad_prompts_files(tmp_path, text, match):
    p = tmp_path / "p.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_prompt_book(p)


def test_cancer_type_from_sample_sheet(tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("slide_id,path,cancer_type\nA,a.svs,LUAD\nB,b.svs,\n")
    assert cancer_type_of("A", sheet, "cancer_type", "generic") == "LUAD"
    assert cancer_type_of("B", sheet, "cancer_type", "generic") == "generic"
    assert cancer_type_of("A", sheet, "project", "BRCA") == "BRCA"
    assert cancer_type_of("A", None, "cancer_type", None) is None


# -- reports ---------------------------------------------------------------------------------
REPORT = ("SPECIMEN: right upper lobe, 3.2 cm. Diagnosis: invasive adenocarcinoma, acinar "
          "predominant, with lepidic and micropapillary components. Tumor necrosis is present. "
          "Lymphovascular invasion identified. Margins negative. pT2a pN0. "
          "No visceral pleural invasion.")


def test_keyword_extractor_is_morphology_only():
    f = rep.keyword_findings(REPORT, 10)
    joined = " | ".join(f)
    assert any("acinar" in x for x in f) and any("necrosis" in x for x in f)
    assert "specimen" not in joined and "pt2a" not in joined and "margin" not in joined
    assert not any("pleural" in x for x in f)  # negated finding dropped
    assert rep.keyword_findings(REPORT, 1) == f[:1]


def test_parse_llm_reply():
    reply = "1. Acinar growth pattern\n- lepidic spread along alveolar walls.\n\n* tumor necrosis\nNONE\nx"
    assert rep.parse_findings(reply, 10) == ["Acinar growth pattern",
                                             "lepidic spread along alveolar walls", "tumor necrosis"]
    assert rep.parse_findings("NONE", 5) == []


class FakeChat:
    def __init__(self, reply):
        self.reply, self.calls = reply, []

    def __call__(self, prompt):
        self.calls.append(prompt)
        return self.reply


def test_llm_extraction_and_cache(tmp_path):
    backend = FakeChat("- solid nests\n- mucin pools")
    compute = lambda t: rep.extract_findings(t, backend, 5)  # noqa: E731
    a = rep.cached_findings(REPORT, "llm:x", tmp_path, compute)
    b = rep.cached_findings(REPORT, "llm:x", tmp_path, compute)
    assert a == b == ["solid nests", "mucin pools"]
    assert len(backend.calls) == 1 and REPORT in backend.calls[0]
    rep.cached_findings(REPORT, "llm:y", tmp_path, compute)  # other extractor, other entry
    assert len(backend.calls) == 2 and len(list(tmp_path.glob("*.json"))) == 2


def test_reports_lookup(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text('slide_id,case_id,report\nS1,,"report one"\n,TCGA-AB-1234,"case report"\n')
    r = rep.load_reports(p)
    assert rep.report_for("S1", r) == "report one"
    assert rep.report_for("TCGA-AB-1234-01Z-00-DX1.ABC", r) == "case report"
    assert rep.report_for("S2", r) is None
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\n1,x\n")
    with pytest.raises(ConfigError, match="report"):
        rep.load_reports(bad)


# -- one slide, files ----------------------------------------------------------------------
def color_slide(path):
    """768x512 slide: 6 blocks of 128 px with distinct colours (block (i, j) at x=128i)."""
    img = np.zeros((512, 768, 3), np.uint8)
    for i in range(6):
        for j in range(4):
            img[128 * j:128 * (j + 1), 128 * i:128 * (i + 1)] = (40 * i, 60 * j, 200)
    tifffile.imwrite(path, img, tile=(256, 256), photometric="rgb", compression="zlib")
    return img


def fake_text_encoder(dim):
    rng = np.random.default_rng(123)
    table = {}

    def enc(texts):
        return np.stack([table.setdefault(t, rng.normal(size=dim).astype(np.float32)) for t in texts])
    return enc


def test_select_slide_writes_csv_and_patches(tmp_path):
    slide = tmp_path / "S1.tif"
    img = color_slide(slide)
    coords = [(128 * i, 128 * j) for j in range(4) for i in range(6)]
    feats, _ = blobs(n_per=6, centers=4, dim=16)
    write_features_file(tmp_path / "S1.h5", feats, coords)
    params = SelectionConfig(prompt_top_k=2, max_per_slide=8)
    out_csv, pdir = tmp_path / "sel" / "S1.csv", tmp_path / "sel" / "patches" / "S1"
    stats = select_slide(tmp_path / "S1.h5", slide, "S1", out_csv, pdir, ["p1", "p2", "p3"],
                         fake_text_encoder(16), params)
    rows = read_selection(out_csv)
    assert list(rows[0]) == CSV_COLUMNS and len(rows) == stats["kept"] > 0
    assert {r["source"] for r in rows} <= {"prompt", "cluster", "prompt+cluster"}
    assert len(rows) == 8  # max_per_slide, filled (24 patches)
    assert sum(r["source"] == "cluster" for r in rows) == stats["from_prototypes"] > 0
    assert all(r["prompt"] for r in rows if r["source"] != "cluster")  # provenance: which prompt
    for r in rows:
        assert r["image"] == f"S1/{r['x']}_{r['y']}.jpg"
        f = pdir.parent / r["image"]
        im = Image.open(f)
        assert im.size == (64, 64) and r["size_px"] == "64" and r["patch_size_level0"] == "128"
        x, y = int(r["x"]), int(r["y"])
        expect = img[y + 64, x + 64].astype(int)
        got = np.asarray(im.convert("RGB"))[32, 32].astype(int)
        assert np.abs(got - expect).max() < 12  # the right block was read
    assert len(list(pdir.iterdir())) == len(rows)
    # deterministic: same input, same CSV
    first = out_csv.read_text()
    select_slide(tmp_path / "S1.h5", slide, "S1", out_csv, pdir, ["p1", "p2", "p3"],
                 fake_text_encoder(16), params)
    assert out_csv.read_text() == first


def test_selection_csv_is_what_captioning_reads(tmp_path):
    """One schema (formats/selection_csv.py): the writer's header is its field order, and the
    captioning reader takes every row of a real select_slide output back."""
    from pathgen.captioning.items import read_selection as read_items
    from pathgen.formats.selection_csv import CAPTIONING_COLUMNS, SELECTION_COLUMNS, SelectionRow

    assert set(CAPTIONING_COLUMNS) <= set(SELECTION_COLUMNS) == set(SelectionRow.__dataclass_fields__)
    slide = tmp_path / "S1.tif"
    color_slide(slide)
    write_features_file(tmp_path / "S1.h5", np.eye(4, 8), [(0, 0), (128, 0), (256, 0), (0, 128)])
    out_csv, pdir = tmp_path / "sel" / "S1.csv", tmp_path / "sel" / "patches" / "S1"
    select_slide(tmp_path / "S1.h5", slide, "S1", out_csv, pdir, [], None, SelectionConfig(prompt_top_k=0))
    assert out_csv.read_text().splitlines()[0] == ",".join(SELECTION_COLUMNS)
    rows, items = read_selection(out_csv), read_items(out_csv, pdir.parent, target_mpp=0.5)
    assert [(it.x, it.y, it.size, it.size_px, it.image) for it in items] == [
        (int(r["x"]), int(r["y"]), int(r["patch_size_level0"]), int(r["size_px"]), r["image"]) for r in rows]
    assert all(it.path.is_file() and it.slide_id == "S1" for it in items)


def test_select_png_resized(tmp_path):
    slide = tmp_path / "S1.tif"
    color_slide(slide)
    write_features_file(tmp_path / "S1.h5", np.eye(4, 8), [(0, 0), (128, 0), (256, 0), (0, 128)])
    params = SelectionConfig(prompt_top_k=0, image_format="png", image_size_px=32)
    select_slide(tmp_path / "S1.h5", slide, "S1", tmp_path / "s.csv", tmp_path / "p", [], None, params)
    rows = read_selection(tmp_path / "s.csv")
    assert len(rows) == 4 and all(r["source"] == "cluster" for r in rows)
    assert rows[0]["size_px"] == "64"  # at the target mpp; the file itself is resized
    assert Image.open(tmp_path / rows[0]["image"].replace("S1/", "p/")).size == (32, 32)


def test_empty_in_empty_out(tmp_path):
    write_features_file(tmp_path / "E.h5", np.zeros((0, 16)), np.zeros((0, 2)))
    called = []
    stats = select_slide(tmp_path / "E.h5", None, "E", tmp_path / "E.csv", tmp_path / "p" / "E",
                         ["p"], lambda t: called.append(t), SelectionConfig())
    assert stats["kept"] == 0 and not called
    with open(tmp_path / "E.csv") as fh:
        assert list(csv.reader(fh)) == [CSV_COLUMNS]
    assert (tmp_path / "p" / "E").is_dir() and not any((tmp_path / "p" / "E").iterdir())


def test_missing_attrs_and_file(tmp_path):
    with h5py.File(tmp_path / "bad.h5", "w") as h5:
        h5["features"] = np.zeros((1, 4), np.float32)
        h5["coords"] = np.zeros((1, 2), np.int64)
    with pytest.raises(ValueError, match="patch_size"):
        select_slide(tmp_path / "bad.h5", None, "B", tmp_path / "b.csv", tmp_path / "b", [], None,
                     SelectionConfig())
    with pytest.raises(FileNotFoundError, match="features stage"):
        select_slide(tmp_path / "none.h5", None, "B", tmp_path / "b.csv", tmp_path / "b", [], None,
                     SelectionConfig())


TINY = EncoderSpec(arch="pathgen-tiny-vit", pretrained=None)


def test_run_selection_with_reports(tmp_path):
    """The library runs on its section + resolved specs only (no PathgenConfig)."""
    slide = tmp_path / "TCGA-AB-1234-01Z-00-DX1.tif"
    color_slide(slide)
    feats, _ = blobs(n_per=6, centers=4, dim=16)
    coords = [(128 * i, 128 * j) for j in range(4) for i in range(6)]
    write_features_file(tmp_path / "f.h5", feats, coords)
    reports = tmp_path / "reports.csv"
    reports.write_text(f'case_id,report\nTCGA-AB-1234,"{REPORT}"\n')
    sel = SelectionConfig(reports=reports, prompt_top_k=1)
    sid = "TCGA-AB-1234-01Z-00-DX1"
    prompts = slide_prompts(sel, sid, cancer_type="LUAD", cache_dir=tmp_path / "cache")
    assert len(prompts) > 20 and any(p.startswith("an H&E image showing") for p in prompts)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    models = SelectionModels("my-text-clip", TINY, "my-image-clip", TINY)
    stats = run_selection(sel, models, sid, tmp_path / "f.h5", slide, tmp_path / "sel" / f"{sid}.csv",
                          tmp_path / "sel" / "patches" / sid, cancer_type="LUAD",
                          text_encoder=fake_text_encoder(16))
    assert stats["n_prompts"] == len(prompts)
    assert (tmp_path / "sel" / "report_findings").is_dir()
    assert "'my-image-clip', 'my-text-clip'" in stats["encoder_warning"]  # names from the caller


def test_run_selection_loads_the_text_tower_from_the_spec(tmp_path):
    """No text encoder given: the tower is built from the resolved spec (a name no built-in
    has), and its prompt embeddings are cached under the spec's key."""
    slide = tmp_path / "S.tif"
    color_slide(slide)
    feats, _ = blobs(n_per=6, centers=4, dim=128)  # tiny-demo's embedding width
    write_features_file(tmp_path / "f.h5", feats, [(128 * i, 128 * j) for j in range(4) for i in range(6)])
    models = SelectionModels("my-text-clip", TINY, "my-text-clip", TINY)
    stats = run_selection(SelectionConfig(prompt_top_k=1, cancer_type="LUAD"), models, "S",
                          tmp_path / "f.h5", slide, tmp_path / "S.csv", tmp_path / "p" / "S",
                          embeddings_cache=tmp_path / "emb")
    assert stats["n_prompts"] > 0 and len(list((tmp_path / "emb").rglob("*.npy"))) == stats["n_prompts"]


def test_llm_extractor_asks_the_summarize_agent(tmp_path, monkeypatch):
    """report_extractor llm: the report goes to the summarize agent's server and model once
    (then the cache); the cache id names that model."""
    from pathgen_testkit.mock_chat_server import MockChatServer
    from pathgen.config.captioning import CaptioningConfig
    from pathgen.instruct.chat import chat_settings

    reports = tmp_path / "r.csv"
    reports.write_text(f'slide_id,report\nS1,"{REPORT}"\n')
    sel = SelectionConfig(reports=reports, report_extractor="llm")
    monkeypatch.setenv("PATHGEN_TEST_LM_KEY", "lm-key")
    with MockChatServer(latency_s=0.0, served_models={"vlm"}) as vlm, \
            MockChatServer(latency_s=0.0, served_models={"summ-lm"}, api_key="lm-key",
                           reply=lambda body: "- acinar glands\n- tumor necrosis") as lm:
        ccfg = CaptioningConfig(backend="openai", openai={"base_url": vlm.base_url, "model": "vlm"},
                                agents={"summarize": {"model": "summ-lm", "endpoint": lm.base_url,
                                                      "api_key_env": "PATHGEN_TEST_LM_KEY"}})
        chat = chat_settings(ccfg, "selection.report_extractor 'llm'")
        for _ in range(2):
            prompts = slide_prompts(sel, "S1", cache_dir=tmp_path / "c", chat=chat)
    assert prompts[-2:] == ["an H&E image showing acinar glands", "an H&E image showing tumor necrosis"]
    assert len(lm.log) == 1 and vlm.log == [] and lm.bodies[0]["model"] == "summ-lm"
    (cached,) = (tmp_path / "c").glob("*.json")
    assert json.loads(cached.read_text())["extractor"] == f"llm:openai:summ-lm:{rep.LLM_PROMPT_VERSION}"
    with pytest.raises(ConfigError, match="report_extractor 'llm' needs"):
        slide_prompts(sel, "S1", cache_dir=tmp_path / "other")  # no chat settings given


def test_cancer_types_for_the_rule(tmp_path):
    """The rule's per-slide param: sample-sheet type, else selection.cancer_type."""
    from pathgen.selection.workflow import cancer_types

    sheet = tmp_path / "s.csv"
    sheet.write_text("slide_id,path,cancer_type\nA,a.svs,LUAD\nB,b.svs,\n")
    cfg = PathgenConfig(demo={"enabled": False}, slides={"sample_sheet": str(sheet)},
                        selection={"cancer_type": "BRCA"})
    assert cancer_types(cfg, ["A", "B"]) == {"A": "LUAD", "B": "BRCA"}
    sheet.write_text("slide_id,path,cancer_type\nA,a.svs,LUSC\nB,b.svs,\n")  # edited: re-read
    assert cancer_types(cfg, ["A"]) == {"A": "LUSC"}


def test_prompt_embedding_cache_embeds_each_prompt_once(tmp_path):
    import numpy as np

    from pathgen.selection.runner import cached_text_encoder

    calls = []

    def encode(texts):
        calls.append(list(texts))
        return np.stack([np.full(4, len(t), np.float32) for t in texts])

    enc = cached_text_encoder(encode, tmp_path, "key1")
    first = enc(["a b", "ccc"])
    again = cached_text_encoder(encode, tmp_path, "key1")(["ccc", "a b", "dddd"])
    assert calls == [["a b", "ccc"], ["dddd"]]  # only the new prompt is embedded
    assert np.array_equal(again[1], first[0]) and again[2][0] == 4
    cached_text_encoder(encode, tmp_path, "other-encoder")(["a b"])
    assert calls[-1] == ["a b"]  # another encoder never reuses these embeddings
