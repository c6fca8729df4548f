"""The caption audit loop (pathgen/audit, docs/dataset.md "Auditing captions"): seeded stratified
sampling of the final pairs, the review server's safety (paths, escaping, malformed posts,
atomic saves, resume) and the scores (Wilson intervals, kappa, describe vs revise)."""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
from pathlib import Path

import pytest

from pathgen.audit import score as score_mod
from pathgen.audit.files import reviewer_file, reviewer_file_stem
from pathgen.audit.sample import AuditError, allocate, load_manifest, read_pairs, sample_audit
from pathgen.audit.sentences import split_sentences
from pathgen.audit.server import MAX_BODY, check_path
from pathgen.audit.verdicts import VerdictStore, item_digest
from pathgen.cli import main
from pathgen_testkit.caption_audit import HOSTILE, PER_SLIDE, SLIDES, build_dataset_folder, running_server


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_dataset_folder(tmp_path_factory.mktemp("audit_ds"))


@pytest.fixture
def audit(built, tmp_path):
    dataset, cfg = built
    out = tmp_path / "audit"
    assert main(["audit", "sample", "--config", str(cfg), "--dataset", str(dataset), "--n", "8",
                 "--stratify", "cancer_type", "--seed", "1", "--out", str(out)]) == 0
    return out


# -- sentences, allocation --------------------------------------------------------------------
def test_sentence_split():
    assert split_sentences("Glands are present. Nuclei are approx. 2.5 µm, e.g. small ones! Is it "
                           "tumour? Yes (see Fig. 2). Next\nline") == [
        "Glands are present.", "Nuclei are approx. 2.5 µm, e.g. small ones!", "Is it tumour?",
        "Yes (see Fig. 2).", "Next", "line"]
    assert split_sentences("") == [] and split_sentences(None) == []
    assert split_sentences("A. Smith saw it. done") == ["A. Smith saw it. done"]


def test_allocation():
    sizes = {"big": 80, "mid": 15, "small": 5}
    assert allocate(sizes, 20) == {"big": 16, "mid": 3, "small": 1}
    assert allocate(sizes, 20, "equal") == {"big": 8, "mid": 7, "small": 5}  # capped, rest spread
    assert allocate(sizes, 2) == {"big": 2, "mid": 0, "small": 0}            # fewer than strata
    assert allocate(sizes, 2, "equal") == {"big": 1, "mid": 1, "small": 0}
    assert allocate(sizes, 500) == sizes                                     # never more than there is
    assert allocate({"a": 3, "b": 0}, 3) == {"a": 3, "b": 0}
    with pytest.raises(AuditError, match="allocation"):
        allocate(sizes, 3, "random")


# -- sample -------------------------------------------------------------------------------------
def test_sample_is_seeded_stratified_and_complete(built, audit, tmp_path):
    dataset, cfg = built
    m = load_manifest(audit)
    # S1, S2 BRCA (10 pairs), S3 LUAD (5), S4 no type -> selection.cancer_type "generic" (5)
    assert m["strata"] == {"BRCA": {"population": 10, "sampled": 4}, "LUAD": {"population": 5, "sampled": 2},
                           "generic": {"population": 5, "sampled": 2}}
    assert m["n"] == 8 and m["population"] == 4 * PER_SLIDE and m["seed"] == 1
    by_slide = {s: t or "generic" for s, t in SLIDES.items()}
    for item in m["items"]:
        assert item["stratum"] == by_slide[item["slide_id"]]
        img = audit / item["image"]
        src = dataset / "images" / item["slide_id"] / f"{item['x']}_{item['y']}.jpg"
        assert img.is_file() and os.path.samefile(img, src)  # hard link by default
        t = item["texts"]
        assert t["describe"].startswith("Glands are present.") and t["revise"] and t["caption"]
        assert item["sentences"]["caption"] == split_sentences(t["caption"])
        assert len(item["sentences"]["caption"]) == 3
    again = tmp_path / "again"
    args = ["audit", "sample", "--config", str(cfg), "--dataset", str(dataset), "--n", "8", "--out"]
    assert main([*args, str(again), "--seed", "1"]) == 0
    assert [i["id"] for i in load_manifest(again)["items"]] == [i["id"] for i in m["items"]]
    other = tmp_path / "other"
    assert main([*args, str(other), "--seed", "2"]) == 0
    assert {i["id"] for i in load_manifest(other)["items"]} != {i["id"] for i in m["items"]}


def test_sample_strata_options(built, tmp_path, capsys):
    dataset, cfg = built
    base = ["audit", "sample", "--config", str(cfg), "--dataset", str(dataset), "--n", "4", "--images", "copy"]
    assert main([*base, "--stratify", "slide_id", "--out", str(tmp_path / "a")]) == 0
    m = load_manifest(tmp_path / "a")
    assert sorted(i["stratum"] for i in m["items"]) == ["S1", "S2", "S3", "S4"]
    img = tmp_path / "a" / m["items"][0]["image"]
    assert not img.is_symlink() and img.stat().st_nlink == 1  # --images copy
    assert main([*base, "--stratify", "site", "--allocation", "equal", "--out", str(tmp_path / "b")]) == 0
    assert {k: v["sampled"] for k, v in load_manifest(tmp_path / "b")["strata"].items()} == {"left": 2, "right": 2}
    table = tmp_path / "strata.csv"
    table.write_text("slide_id,organ\nS1,breast\nS2,breast\nS3,lung\n")
    assert main([*base, "--stratify", "organ", "--strata-table", str(table), "--out", str(tmp_path / "c")]) == 0
    assert set(load_manifest(tmp_path / "c")["strata"]) == {"breast", "lung", "unknown"}
    assert main([*base, "--stratify", "none", "--out", str(tmp_path / "d")]) == 0
    assert set(load_manifest(tmp_path / "d")["strata"]) == {"all"}
    assert main([*base, "--stratify", "organ", "--out", str(tmp_path / "e")]) == 2
    assert "no column 'organ'" in capsys.readouterr().err
    assert main([*base, "--dataset", str(tmp_path / "nothing"), "--out", str(tmp_path / "f")]) == 2
    assert "pathgen build-dataset" in capsys.readouterr().err


def test_sample_texts_from_caption_files(built, tmp_path):
    dataset, _ = built
    caps = sorted((dataset.parent / "features_x" / "captions_t").glob("*.jsonl"))
    for f in caps:  # other describe texts in the caption files: they win over the shards'
        f.write_text(f.read_text().replace("Nuclei are large.", "Nuclei are huge."))
    try:
        pairs = read_pairs(dataset, caps)
    finally:
        for f in caps:
            f.write_text(f.read_text().replace("Nuclei are huge.", "Nuclei are large."))
    assert all("Nuclei are huge." in p["describe"] for p in pairs)
    assert all("Nuclei are large." in p["describe"] for p in read_pairs(dataset))


def test_resample_keeps_or_protects_verdicts(built, audit):
    dataset, cfg = built
    store = VerdictStore(audit, load_manifest(audit))
    first = load_manifest(audit)["items"][0]["id"]
    store.set_verdict("ann", first, "caption", 0, "correct")
    args = ["audit", "sample", "--config", str(cfg), "--dataset", str(dataset), "--n", "8", "--out", str(audit)]
    assert main([*args, "--seed", "1"]) == 0            # same sample: fine, verdicts kept
    with pytest.raises(AuditError, match="different sample with saved verdicts"):
        sample_audit(dataset, audit, 8, seed=5, stratify="slide_id")
    assert main([*args, "--seed", "5", "--force"]) == 0
    assert reviewer_file(audit, "ann").exists()


# -- server -------------------------------------------------------------------------------------
def request(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    hdrs = {"Host": f"127.0.0.1:{server.server_address[1]}", **(headers or {})}
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    if body is not None:
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), data


def test_server_binds_loopback_and_serves_the_page(audit):
    with running_server(audit) as server:
        assert server.server_address[0] == "127.0.0.1"
        status, headers, page = request(server, "GET", "/")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert b"Glands" not in page  # no item text is ever put into HTML by the server
        for asset in ("/static/review.js", "/static/review.css"):
            assert request(server, "GET", asset)[0] == 200
        status, headers, data = request(server, "GET", "/api/manifest")
        assert headers["Content-Type"].startswith("application/json")
        m = json.loads(data)
        assert m["n"] == 8 and [v["value"] for v in m["verdicts"]] == ["correct", "wrong", "not_visible", "cant_tell"]
        item = m["items"][0]
        status, headers, img = request(server, "GET", item["image_url"])
        assert status == 200 and headers["Content-Type"] == "image/jpeg" and img[:2] == b"\xff\xd8"


TRAVERSALS = ["/files/../manifest.json", "/files/%2e%2e%2fmanifest.json", "/files/%2E%2E/manifest.json",
              "/files/images/%2e%2e%2f%2e%2e%2fsheet.csv", "/files/%252e%252e%252fmanifest.json",
              "/%2e%2e/%2e%2e/etc/passwd", "/files//etc/passwd", "/files/%2fetc%2fpasswd",
              "//etc/passwd", "/files/images\\..\\manifest.json", "/files/images/%00.jpg",
              "/files/./manifest.json", "http://127.0.0.1/files/manifest.json"]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_check_path_refuses_traversal(path):
    with pytest.raises(Exception, match="path|request target"):
        check_path(path)


def test_server_refuses_paths_outside_the_listed_images(audit, caplog):
    caplog.set_level(logging.WARNING, "pathgen.audit.server")
    with running_server(audit) as server:
        for path in TRAVERSALS:
            status, _, body = request(server, "GET", path)
            # http.server itself turns a leading '//' into '/' (then: no such page)
            assert status == (404 if path == "//etc/passwd" else 400), path
            assert "Glands" not in body.decode() and "root:" not in body.decode()
        # inside the folder but not an image of the manifest: not served either
        (audit / "verdicts").mkdir(exist_ok=True)
        (audit / "verdicts" / "ann.json").write_text("{}")
        for path in ("/files/manifest.json", "/files/verdicts/ann.json", "/files/images/nope.jpg",
                     "/files/images", "/nothing"):
            assert request(server, "GET", path)[0] == 404, path
        # DNS rebinding: another Host is refused
        assert request(server, "GET", "/api/manifest", headers={"Host": "evil.example:80"})[0] == 400
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any("%2e%2e%2fmanifest.json" in m for m in refused)
    assert any("/files/../manifest.json" in m for m in refused)
    assert any("verdicts/ann.json" in m and "404" in m for m in refused)


def test_verdicts_saved_resumed_and_cleared(audit):
    m = load_manifest(audit)
    a, b = m["items"][0]["id"], m["items"][1]["id"]
    with running_server(audit) as server:
        post = {"reviewer": "Dr. Ann Ó'Neil", "item": a, "part": "caption", "sentence": 0, "verdict": "wrong"}
        status, _, data = request(server, "POST", "/api/verdict", post)
        assert status == 200 and json.loads(data)["entry"]["caption"] == {"0": "wrong"}
        assert request(server, "POST", "/api/verdict", {**post, "sentence": 1, "verdict": "not_visible"})[0] == 200
        assert request(server, "POST", "/api/verdict", {**post, "part": "describe", "verdict": "correct"})[0] == 200
        assert request(server, "POST", "/api/corrected", {"reviewer": post["reviewer"], "item": b,
                                                          "corrected": "Better <b>caption</b>."})[0] == 200
    path = reviewer_file(audit, "Dr. Ann Ó'Neil")
    assert path.parent == audit / "verdicts" and path.name.startswith("Dr_Ann_O_Neil-")
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".") and p.suffix != ".lock"]
    saved = json.loads(path.read_text())
    assert saved["reviewer"] == "Dr. Ann Ó'Neil"
    assert saved["items"][a]["caption"] == {"0": "wrong", "1": "not_visible"}
    assert saved["items"][a]["digest"] == item_digest(m["items"][0])
    with running_server(audit) as server:  # a new server (the browser closed, the server restarted)
        status, _, data = request(server, "GET", "/api/verdicts?reviewer=Dr.%20Ann%20%C3%93'Neil")
        got = json.loads(data)
        assert status == 200 and got["items"][a]["caption"] == {"0": "wrong", "1": "not_visible"}
        assert got["items"][b]["corrected"] == "Better <b>caption</b>."
        assert request(server, "POST", "/api/verdict", {**post, "verdict": None})[0] == 200  # cleared
        assert json.loads(request(server, "GET", "/api/verdicts?reviewer=Dr.%20Ann%20%C3%93'Neil")[2]
                          )["items"][a]["caption"] == {"1": "not_visible"}
        assert json.loads(request(server, "GET", "/api/verdicts?reviewer=bob")[2])["items"] == {}
        assert request(server, "GET", "/api/verdicts?reviewer=")[0] == 400


def test_malformed_posts_get_400_and_change_nothing(audit):
    item = load_manifest(audit)["items"][0]["id"]
    good = {"reviewer": "ann", "item": item, "part": "caption", "sentence": 0, "verdict": "correct"}
    with running_server(audit) as server:
        assert request(server, "POST", "/api/verdict", good)[0] == 200
        path = reviewer_file(audit, "ann")
        before = (path.read_bytes(), path.stat().st_mtime_ns)
        cases = {
            "not valid JSON": (b'{"reviewer": "ann", ', {}),
            "JSON object": (b"[1, 2]", {}),
            "unknown item": ({**good, "item": "S9_0_0"}, {}),
            "verdict: expected one of": ({**good, "verdict": "maybe"}, {}),
            "part: expected one of": ({**good, "part": "summary"}, {}),
            "sentence: expected an index": ({**good, "sentence": 3}, {}),
            "expected an index 0..2": ({**good, "sentence": True}, {}),
            "missing ['verdict']": ({k: v for k, v in good.items() if k != "verdict"}, {}),
            "unknown ['extra']": ({**good, "extra": 1}, {}),
            "enter your name": ({**good, "reviewer": "  "}, {}),
            "control or invisible": ({**good, "reviewer": "ann\u202e"}, {}),
            "at most 64": ({**good, "reviewer": "a" * 65}, {}),
            "Content-Type must be application/json": (json.dumps(good).encode(), {"Content-Type": "text/plain"}),
            "body too large": (json.dumps({**good, "pad": "x" * MAX_BODY}).encode(), {"Content-Type": "application/json"}),
            "corrected: at most": (None, None),
        }
        for expected, (body, headers) in cases.items():
            if headers is None:
                status, _, data = request(server, "POST", "/api/corrected",
                                          {"reviewer": "ann", "item": item, "corrected": "x" * 4001})
            else:
                status, _, data = request(server, "POST", "/api/verdict", body, headers)
            assert status == 400, expected
            assert expected in json.loads(data)["error"], (expected, data)
        assert request(server, "POST", "/api/verdict", good, {"Origin": "http://evil.example"})[0] == 403
        assert request(server, "POST", "/api/elsewhere", good)[0] == 404
        assert (path.read_bytes(), path.stat().st_mtime_ns) == before
        # a huge Content-Length is refused before reading: the server answers at once
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        conn.putrequest("POST", "/api/verdict", skip_host=True)
        conn.putheader("Host", f"127.0.0.1:{server.server_address[1]}")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(10 ** 9))
        conn.endheaders()
        r = conn.getresponse()
        assert r.status == 400 and b"body too large" in r.read()
        conn.close()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_save_is_atomic_and_serialised(audit, monkeypatch):
    m = load_manifest(audit)
    store = VerdictStore(audit, m)
    first = m["items"][0]
    store.set_verdict("ann", first["id"], "caption", 0, "correct")
    path = reviewer_file(audit, "ann")
    before = path.read_bytes()

    def broken_dump(obj, fh, **kw):
        fh.write('{"half": ')
        raise OSError("disk full")

    monkeypatch.setattr("pathgen.audit.verdicts.json.dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        store.set_verdict("ann", first["id"], "caption", 1, "wrong")
    monkeypatch.undo()
    assert path.read_bytes() == before  # the old file is intact, no temp file left
    assert sorted(p.name for p in path.parent.iterdir()) == [".ann.lock", "ann.json"]
    # many verdicts at once (threads): none is lost
    jobs = [(i["id"], k) for i in m["items"] for k in range(len(i["sentences"]["caption"]))]
    threads = [threading.Thread(target=store.set_verdict, args=("bob", item, "caption", k, "correct"))
               for item, k in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    saved = json.loads(reviewer_file(audit, "bob").read_text())
    assert sum(len(e["caption"]) for e in saved["items"].values()) == len(jobs)


def test_verdicts_on_changed_texts_are_stale(audit):
    m = load_manifest(audit)
    item = m["items"][0]
    VerdictStore(audit, m).set_verdict("ann", item["id"], "caption", 0, "wrong")
    item["texts"]["caption"] = "Another caption."
    store = VerdictStore(audit, m)
    assert store.view("ann")["items"] == {}
    entry = store.set_verdict("ann", item["id"], "caption", 0, "correct")
    assert entry["caption"] == {"0": "correct"} and entry["digest"] == item_digest(item)


def test_reviewer_file_names():
    assert reviewer_file_stem("ann") == "ann" and reviewer_file_stem("ann_b-2") == "ann_b-2"
    odd = ["../../etc/passwd", "<script>", ".hidden", "a b", "a_b", "/abs"]
    stems = [reviewer_file_stem(n) for n in odd]
    assert len(set(stems)) == len(odd)
    assert all("/" not in s and not s.startswith(".") and s for s in stems)


# -- score --------------------------------------------------------------------------------------
def test_wilson_matches_scipy():
    from scipy.stats import binomtest

    for k, n in [(8, 10), (0, 10), (10, 10), (1, 3), (57, 90)]:
        lo, hi = score_mod.wilson(k, n)
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert lo == pytest.approx(ci.low, abs=1e-9) and hi == pytest.approx(ci.high, abs=1e-9)
    assert score_mod.wilson(0, 0) == (None, None)
    assert score_mod.wilson(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)


def test_revision_effect_definitions():
    item = {"sentences": {"describe": ["Glands are present.", "Nuclei are large and dark.", "Mitoses are frequent."],
                          "revise": ["Glands are present.", "Nuclei are large and pale.", "Necrosis is seen."]}}
    # describe: 0 correct, 1 wrong (edited -> revise 1 correct: fixed), 2 wrong (removed: fixed)
    # revise: 0 wrong (describe 0 was correct: introduced by edit), 2 new and wrong: introduced
    entry = {"describe": {"0": "correct", "1": "wrong", "2": "not_visible"},
             "revise": {"0": "wrong", "1": "correct", "2": "wrong"}}
    c = score_mod.revision_effect(item, entry)
    assert c["fixed_removed"] == 1 and c["fixed_edited"] == 1
    assert c["introduced_edited"] == 1 and c["introduced_new"] == 1 and c["kept_error"] == 0
    assert score_mod.match_sentences(item["sentences"]["describe"], item["sentences"]["revise"]) == {0: 0, 1: 1}
    assert score_mod.revision_text([{"sentences": item["sentences"]}]) == {
        "items": 1, "describe_sentences": 3, "revise_sentences": 3, "kept": 1, "edited": 1, "removed": 1, "added": 1}
    assert not score_mod.revision_effect(item, {"revise": entry["revise"]})  # needs both sides


def test_score_two_reviewers(audit, capsys):
    from sklearn.metrics import cohen_kappa_score

    m = load_manifest(audit)
    store = VerdictStore(audit, m)
    items = m["items"]
    ann = ["correct", "correct", "correct"]
    plan = {  # item index -> (ann's verdicts, bob's verdicts) on the 3 caption sentences
        0: (ann, ["correct", "wrong", "correct"]),
        1: (["wrong", "correct", "cant_tell"], ["wrong", "correct", "correct"]),
        2: (["correct", "not_visible", "correct"], ["correct", "not_visible", "correct"]),
        3: (["correct", "correct"], None),  # ann leaves sentence 2 open: undetermined
    }
    for idx, (va, vb) in plan.items():
        for k, v in enumerate(va):
            store.set_verdict("ann", items[idx]["id"], "caption", k, v)
        for k, v in enumerate(vb or []):
            store.set_verdict("bob|x", items[idx]["id"], "caption", k, v)
    store.set_corrected("ann", items[1]["id"], "Fixed caption.")
    store.set_verdict("ann", items[0]["id"], "describe", 1, "wrong")
    store.set_verdict("ann", items[0]["id"], "revise", 1, "correct")
    assert main(["audit", "score", str(audit)]) == 0
    res = json.loads((audit / "score.json").read_text())
    assert res["reviewers"] == ["ann", "bob|x"] or sorted(res["reviewers"]) == ["ann", "bob|x"]
    rows = {(r["scope"], r["stratum"], r["reviewer"]): r for r in res["sentence_accuracy"]}
    a = rows[("all", None, "ann")]
    assert a["counts"] == {"correct": 8, "wrong": 1, "not_visible": 1, "cant_tell": 1} and a["k"] == 8 and a["n"] == 10
    assert (a["ci_low"], a["ci_high"]) == pytest.approx(score_mod.wilson(8, 10))
    pooled = rows[("all", None, "all")]
    assert pooled["k"] == 8 + 6 and pooled["n"] == 10 + 9
    caps = {(r["scope"], r["stratum"], r["reviewer"]): r for r in res["caption_accuracy"]}
    c = caps[("all", None, "ann")]
    assert (c["correct"], c["with_error"], c["undetermined"]) == (1, 2, 1) and c["accuracy"] == pytest.approx(1 / 3)
    strata = {r["stratum"] for r in res["sentence_accuracy"] if r["scope"] == "stratum"}
    assert strata == {i["stratum"] for i in items}
    per_stratum = sum(r["n"] for r in res["sentence_accuracy"] if r["scope"] == "stratum" and r["reviewer"] == "all")
    assert per_stratum == pooled["n"]
    (agree,) = res["agreement"]
    la = ann + ["wrong", "correct", "cant_tell"] + ["correct", "not_visible", "correct"]
    lb = ["correct", "wrong", "correct"] + ["wrong", "correct", "correct"] + ["correct", "not_visible", "correct"]
    assert agree["sentence"]["n"] == 9
    assert agree["sentence"]["kappa"] == pytest.approx(cohen_kappa_score(la, lb, labels=["correct", "wrong", "not_visible", "cant_tell"]))
    # captions both determined: item 0 (correct / error), items 1 and 2 (error / error)
    assert agree["caption"]["n"] == 3 and agree["caption"]["observed_agreement"] == pytest.approx(2 / 3)
    rev = {r["reviewer"]: r for r in res["revision"]}
    assert rev["ann"]["fixed_edited"] == 1 and rev["ann"]["items"] == 1
    assert res["corrected_captions"] == {"ann": 1, "bob|x": 0}
    md = (audit / "score.md").read_text()
    assert "| stratum | reviewer | sentences |" in md and "bob\\|x" in md and "Cohen's kappa" in md
    assert "80.0 % [49.0, 94.3]" in md
    assert "## Caption-level accuracy" in capsys.readouterr().out


def test_score_without_verdicts(audit):
    res = score_mod.write_score(audit)
    assert res["reviewers"] == [] and res["agreement"] == []
    assert res["sentence_accuracy"][0]["accuracy"] is None
    assert "No verdicts yet" in (audit / "score.md").read_text()
    assert res["revision_text"]["items"] == 8


def test_hostile_caption_stays_data(built, tmp_path):
    """The caption with <script> reaches the API as a JSON string; the page renders it with
    textContent (tests/test_audit_browser.py shows it as text in a real browser)."""
    dataset, cfg = built
    out = tmp_path / "all"
    assert main(["audit", "sample", "--config", str(cfg), "--dataset", str(dataset), "--n", "50",
                 "--out", str(out)]) == 0
    with running_server(out) as server:
        _, headers, data = request(server, "GET", "/api/manifest")
    assert headers["Content-Type"].startswith("application/json")
    texts = [s for i in json.loads(data)["items"] for s in i["sentences"]["caption"]]
    assert HOSTILE in texts
    js = (Path(__file__).parents[1] / "pathgen" / "data" / "audit" / "review.js").read_text()
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "document.write" not in js
