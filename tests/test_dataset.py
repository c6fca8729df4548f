"""Dataset assembly: PathGen JSON, open_clip CSV, WebDataset shards, card, gallery."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pathgen.config.dataset import DatasetConfig
from pathgen.dataset import build_dataset, output_paths, read_pathgen_json
from pathgen.dataset.card import length_stats, token_counter
from pathgen.dataset.writers import clean_caption, sample_key
from pathgen_testkit.caption_files import make_slide


@pytest.fixture
def two_slides(tmp_path):
    fd = tmp_path / "features_x"
    return fd, [make_slide(fd, "S1.a", 3, 1), make_slide(fd, "S2", 2, 0)]


def test_build_outputs_and_counts(tmp_path, two_slides):
    _, files = two_slides
    out = tmp_path / "dataset"
    card = build_dataset(files, out, DatasetConfig(shard_size=2, gallery_size=3))
    for p in output_paths(out).values():
        assert p.exists(), p
    assert card["n_slides"] == 2 and card["n_pairs"] == 5 and card["n_accepted"] == 5
    # S1.a: one rejected record + one failed record from .rejects.jsonl; S2: one failed
    assert card["n_rejected"] == 3
    assert card["reject_reasons"] == {"failed": 2, "too_short": 1}
    per = {s["slide_id"]: s for s in card["per_slide"]}
    assert per["S1.a"]["n_rejected"] == 2 and per["S1.a"]["summary"]["n"] == 4
    assert card["reject_reasons_from_summaries"] == {"refusal": 0, "too_short": 1}
    on_disk = json.loads((out / "dataset_card.json").read_text())
    assert on_disk["csv_separator"] == "\t" and on_disk["n_pairs"] == 5
    md = (out / "dataset_card.md").read_text()
    assert "too_short" in md and "--csv-separator $'\\t'" in md
    assert len(list((out / "images").rglob("*.jpg"))) == 5


def test_pathgen_json_round_trip(tmp_path, two_slides):
    _, files = two_slides
    out = tmp_path / "d"
    build_dataset(files, out, DatasetConfig(), file_ids={"S2": "uuid-2"})
    raw = json.loads((out / "pathgen.json").read_text())
    assert raw[0]["position"] == ["0", "128"] and isinstance(raw[0]["position"][0], str)
    assert set(raw[0]) == {"wsi_id", "position", "caption"}  # file_id only when known
    assert [r.get("file_id") for r in raw if r["wsi_id"] == "S2"] == ["uuid-2", "uuid-2"]
    items = read_pathgen_json(out / "pathgen.json")
    assert len(items) == 5 and items[0]["wsi_id"] == "S1.a" and items[0]["x"] == 0
    assert items[0]["caption"].startswith("caption 0 of S1.a")


def test_reader_tolerates_WSI_id_and_explains(tmp_path):
    p = tmp_path / "release.json"
    p.write_text(json.dumps([{"WSI_id": "TCGA-1", "position": ["10", "20"], "caption": "c",
                              "file_id": "f"}]))
    assert read_pathgen_json(p) == [{"wsi_id": "TCGA-1", "x": 10, "y": 20, "caption": "c", "file_id": "f"}]
    p.write_text(json.dumps([{"slide": "x", "caption": "c"}]))
    with pytest.raises(ValueError, match=r"item 0 lacks \['wsi_id', 'position'\]"):
        read_pathgen_json(p)
    p.write_text(json.dumps({"a": 1}))
    with pytest.raises(ValueError, match="JSON list"):
        read_pathgen_json(p)
    p.write_text(json.dumps([{"wsi_id": "a", "position": ["x"], "caption": "c"}]))
    with pytest.raises(ValueError, match="not \\[x, y\\]"):
        read_pathgen_json(p)


def test_reader_takes_json_lines_through_the_validated_reader(tmp_path):
    """One caption object per line is read too (pathgen.jsonl_store.read_jsonl); a bad line is
    named by file and line number."""
    p = tmp_path / "release.jsonl"
    p.write_text('{"wsi_id": "A", "position": ["1", "2"], "caption": "c1"}\n\n'
                 '{"wsi_id": "B", "position": ["3", "4"], "caption": "c2", "file_id": "u"}\n')
    assert read_pathgen_json(p) == [{"wsi_id": "A", "x": 1, "y": 2, "caption": "c1", "file_id": None},
                                    {"wsi_id": "B", "x": 3, "y": 4, "caption": "c2", "file_id": "u"}]
    p.write_text('{"wsi_id": "A", "position": ["1", "2"], "caption": "c1"}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"neither JSON .* line 2: expected a JSON object"):
        read_pathgen_json(p)
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="line 1 is not UTF-8"):
        read_pathgen_json(p)


@pytest.mark.parametrize("sep", ["\t", ","])
def test_csv_reads_back_with_recorded_separator(tmp_path, two_slides, sep):
    _, files = two_slides
    out = tmp_path / "d"
    build_dataset(files, out, DatasetConfig(csv_separator=sep))
    card = json.loads((out / "dataset_card.json").read_text())
    df = pd.read_csv(out / "open_clip.csv", sep=card["csv_separator"])
    assert list(df.columns) == ["filepath", "title"] and len(df) == 5
    assert df["title"][0] == 'caption 0 of S1.a: dense nuclei & "glands"'
    for fp in df["filepath"]:
        Image.open(fp).verify()
    try:
        from open_clip_train.data import CsvDataset
    except ImportError:
        return
    ds = CsvDataset(str(out / "open_clip.csv"), transforms=lambda im: np.asarray(im).shape,
                    img_key=card["csv_img_key"], caption_key=card["csv_caption_key"],
                    sep=card["csv_separator"], tokenizer=lambda texts: texts)
    shape, text = ds[1]
    assert len(ds) == 5 and shape == (16, 16, 3) and text.startswith("caption 1 of S1.a")


def test_relative_csv_paths(tmp_path, two_slides):
    _, files = two_slides
    out = tmp_path / "d"
    build_dataset(files, out, DatasetConfig(csv_paths="relative"))
    df = pd.read_csv(out / "open_clip.csv", sep="\t")
    assert df["filepath"][0] == "images/S1.a/0_128.jpg" and (out / df["filepath"][0]).exists()


def test_webdataset_shards_read_back(tmp_path, two_slides):
    import webdataset as wds

    _, files = two_slides
    out = tmp_path / "d"
    build_dataset(files, out, DatasetConfig(shard_size=2))
    count = json.loads((out / "shards" / "count.json").read_text())
    assert count["num_samples"] == 5 and count["num_shards"] == 3
    assert count["pattern"] == "shard-{000000..000002}.tar"
    urls = [str(out / "shards" / s["name"]) for s in count["shards"]]
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
    assert len(samples) == 5
    s = samples[0]
    assert s["__key__"] == sample_key("S1.a", 0, 128) == "S1-a_0_128"
    assert s["jpg"].size == (16, 16) and s["txt"].startswith("caption 0")
    assert s["json"]["wsi_id"] == "S1.a" and s["json"]["describe"] == "describe 0 <b>"


def test_rebuild_after_adding_and_removing_slides(tmp_path, two_slides):
    fd, files = two_slides
    out = tmp_path / "d"
    build_dataset(files, out, DatasetConfig(shard_size=3))
    first = (out / "shards" / "shard-000000.tar").stat().st_mtime_ns
    s3 = make_slide(fd, "S3", 2, 0, start=10)
    card = build_dataset(files + [s3], out, DatasetConfig(shard_size=3))
    assert card["n_pairs"] == 7 and card["shards"]["num_shards"] == 3
    assert (out / "shards" / "shard-000000.tar").stat().st_mtime_ns == first  # reused
    card = build_dataset([files[0]], out, DatasetConfig(shard_size=3))
    assert card["n_pairs"] == 3
    assert sorted(p.name for p in (out / "shards").glob("*.tar")) == ["shard-000000.tar"]
    assert not (out / "images" / "S3").exists()
    assert len(pd.read_csv(out / "open_clip.csv", sep="\t")) == 3


def test_companion_files_are_skipped(tmp_path, two_slides):
    _, files = two_slides
    partial = files[0].with_name("S1.a.partial.jsonl")
    partial.write_text(files[0].read_text())
    globbed = sorted(files[0].parent.glob("*.jsonl"))
    assert len(globbed) == 5
    card = build_dataset(globbed, tmp_path / "d")
    assert card["n_slides"] == 2 and card["n_pairs"] == 5


def test_missing_image_is_explained(tmp_path, two_slides):
    fd, files = two_slides
    (fd / "selection" / "patches" / "S2" / "0_128.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="images_root"):
        build_dataset(files, tmp_path / "d")


def test_bad_jsonl_is_explained(tmp_path):
    p = tmp_path / "X.jsonl"
    p.write_text('{"slide_id": "X"}\nnot json\n')
    with pytest.raises(ValueError, match="line 2"):
        build_dataset([p], tmp_path / "d")
    p.write_text('{"slide_id": "X", "x": 1}\n')
    with pytest.raises(ValueError, match="lacks 'y'"):
        build_dataset([p], tmp_path / "d")


def test_empty_dataset(tmp_path):
    p = tmp_path / "caps" / "E.jsonl"
    p.parent.mkdir()
    p.write_text("")
    card = build_dataset([p], tmp_path / "d")
    assert card["n_pairs"] == 0 and card["shards"]["num_shards"] == 0
    assert json.loads((tmp_path / "d" / "pathgen.json").read_text()) == []


def test_token_stats_and_gallery(tmp_path, two_slides):
    _, files = two_slides
    out = tmp_path / "d"
    card = build_dataset(files, out, DatasetConfig(gallery_size=2, context_length=10))
    count, desc = token_counter("ViT-B-16")
    assert "SimpleTokenizer" in desc
    assert count("hello world") == 4  # 2 words + start/end
    df = pd.read_csv(out / "open_clip.csv", sep="\t")
    expect = [count(t) for t in df["title"]]
    t = card["caption_tokens"]
    assert t["max"] == max(expect) and t["n"] == 5
    assert t["over_context"] == sum(e > 10 for e in expect)
    assert sum(t["histogram"]["counts"]) == 5
    html = (out / "gallery.html").read_text()
    assert html.count("<img ") == 2 and "&lt;b&gt;" in html and "<b>" in html
    assert token_counter("no-such-arch")[1].startswith("open_clip SimpleTokenizer (fallback")


def test_length_stats_and_clean_caption():
    s = length_stats([1, 2, 80, 100], 8, 77)
    assert s["over_context"] == 2 and s["over_context_fraction"] == 0.5
    assert s["histogram"]["bin_edges"][-1] >= 100 and sum(s["histogram"]["counts"]) == 4
    assert length_stats([], 8) == {"n": 0}
    assert clean_caption(" a\tb\n c ") == "a b c"


def test_separator_config():
    assert DatasetConfig(csv_separator="tab").csv_separator == "\t"
    with pytest.raises(ValueError):
        DatasetConfig(csv_separator=";;")
