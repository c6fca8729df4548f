"""One failing item never aborts a slide, in the openai and morphometric backends too (the
transformers backend's batch splitting is tested in test_backend_transformers.py): the item is
recorded failed with its reason and the other items are captioned."""

from __future__ import annotations

import json
from pathlib import Path

from pathgen.captioning.backends import morphometric
from pathgen_testkit.mock_chat_server import MockChatServer
from pathgen.captioning.stage import caption_slide
from pathgen.config.captioning import CaptioningConfig
from pathgen_testkit.patches import write_selection


def _records(out: Path) -> dict[int, dict]:
    return {r["x"]: r for r in map(json.loads, out.read_text().splitlines())}


def test_morphometric_measurement_error_fails_that_patch_only(tmp_path, monkeypatch):
    real = morphometric.measure_patch

    def flaky(rgb, mpp, *args):
        if rgb.mean() < 175:  # the tumour-like patches (many dark nuclei)
            raise ValueError("labels must be non-negative")
        return real(rgb, mpp, *args)

    monkeypatch.setattr(morphometric, "measure_patch", flaky)
    csv_path, patches = write_selection(tmp_path, kinds=("tumour", "stroma", "stroma"), n=6)
    out = tmp_path / "cap" / "slide_a.jsonl"
    summary = caption_slide(csv_path, patches, out, CaptioningConfig(backend="morphometric", max_failed_fraction=0.5),
                            target_mpp=0.5)
    recs = _records(out)
    failed = {x for x, r in recs.items() if r["status"] == "failed"}
    assert failed == {0, 1536} and summary["n_ok"] == 4
    assert all("describe: measuring" in recs[x]["error"] and "non-negative" in recs[x]["error"]
               for x in failed)


def test_openai_unencodable_image_fails_that_item_only(tmp_path):
    csv_path, patches = write_selection(tmp_path, kinds=("tumour", "stroma"), n=4)
    (patches / "slide_a" / "512_1024.jpg").write_bytes(b"not an image at all")
    with MockChatServer(latency_s=0.01) as srv:
        cfg = CaptioningConfig(backend="openai", concurrency=4, max_failed_fraction=0.5,
                               openai=dict(base_url=srv.base_url, model="m", max_retries=0))
        out = tmp_path / "cap" / "slide_a.jsonl"
        summary = caption_slide(csv_path, patches, out, cfg, target_mpp=0.5)
    recs = _records(out)
    assert summary["n_ok"] == 3 and recs[512]["status"] == "failed"
    assert recs[512]["error"].startswith("describe: ") and "512_1024.jpg" in recs[512]["error"]
