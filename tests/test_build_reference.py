"""The streaming build_dataset / build_instruct write what the in-memory implementation wrote.

tests/fixtures/build_reference/reference/ holds the outputs of the pre-streaming
implementation (commit 27ee7fc) on the caption files in tests/fixtures/build_reference/inputs/
(made by make_inputs.py there), for several settings: defaults with file ids, rejected records
+ revise text + comma CSV + relative paths + exact cross-slide dedup, describe text + IVF
dedup + copied images, a rebuild over an existing folder (stale images, shards and junk), and
instruction data from the offline and an LLM generator. Every output file is compared byte
for byte, after replacing the build's folder by <ROOT> (absolute paths in the CSV and card)
and the shard fingerprints in count.json (they hash absolute paths and mtimes). Two outputs are
compared by content instead, because their bytes depend on a library version and not on
pathgen: the instruct Parquet (pyarrow writes its version into the file) and the instruct
JPEGs (re-encoded by Pillow: each must equal the re-encode of its source patch).

Regenerate only on purpose (an intended output change):
``python tests/test_build_reference.py --regenerate``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pathgen.config.dataset import DatasetConfig
from pathgen.config.instruct import InstructConfig
from pathgen.dataset import build_dataset
from pathgen.instruct.build import build_instruct
from pathgen_testkit.feature_files import write_features_file

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "build_reference"
REFERENCE = FIXTURE / "reference"


def _inputs(tmp: Path) -> Path:
    """A copy of the fixture inputs (+ each slide's features HDF5 from embeddings.json)."""
    root = tmp / "in"
    shutil.copytree(FIXTURE / "inputs", root)
    emb = json.loads((root / "embeddings.json").read_text())
    for slide, rows in emb.items():
        coords = [tuple(int(v) for v in k.split("_")) for k in rows]
        # reversed, plus a patch without a caption: rows are found by x, y (pathgen's own writer)
        write_features_file(root / "features_x" / f"{slide}.h5",
                            np.asarray([[1] * 8] + list(rows.values())[::-1], np.float32),
                            np.asarray([(9000, 0)] + coords[::-1], np.int64), patch_size=16, patch_size_level0=16)
    return root


def _captions(root: Path) -> list[Path]:
    return sorted((root / "features_x" / "captions_t").glob("*.jsonl"))  # companions too


def _patches(root: Path) -> Path:
    return root / "features_x" / "selection" / "patches"


def _llm_chat(prompt: str) -> str:
    """A deterministic stand-in for the summarize agent (replies depend on the prompt only)."""
    h = zlib.crc32(prompt.encode())
    if "Statement:" in prompt:
        return "no" if "WRONG" in prompt else "Yes, it is."
    if '"turns"' in prompt:
        if h % 5 == 0:
            return "no idea"
        return json.dumps({"turns": [{"question": f"What is seen ({h % 7})?", "answer": "Nests of cells."},
                                     {"question": "And the stroma?", "answer": "Scant."}]})
    kind = h % 4
    if kind == 0:
        return "I cannot help with that"
    correct = "WRONG" if kind == 2 else "Right answer"
    return "```json\n" + json.dumps({"question": f"Q{h % 3}?", "correct": correct,
                                     "distractors": ["a", "b", "c"]}) + "\n```"


def _dataset(tmp: Path, name: str) -> Path:
    root, out = _inputs(tmp), tmp / "out"
    files = _captions(root)
    if name == "dataset_default":
        build_dataset(files, out, DatasetConfig(shard_size=4, gallery_size=4),
                      file_ids={"S2": "uuid-2", "S1.a": "uuid-1"})
    elif name == "dataset_variant":
        build_dataset(files, out, DatasetConfig(
            accepted_only=False, caption_stage="revise", csv_separator=",", csv_paths="relative",
            shard_size=5, gallery_size=100, seed=3, dedup_cosine=0.98, context_length=20))
    elif name == "dataset_ivf":
        build_dataset(files, out, DatasetConfig(caption_stage="describe", dedup_cosine=0.95,
                                                dedup_exact_max=0, dedup_neighbors=4, images="copy",
                                                gallery_size=5, seed=1))
    elif name == "dataset_rebuild":
        build_dataset(files, out, DatasetConfig(shard_size=3))
        (out / "images" / "S9").mkdir()
        (out / "images" / "S9" / "old.jpg").write_bytes(b"old")
        (out / "images" / "junk.txt").write_text("junk")
        (out / "images" / "S1.a" / "stale.jpg").write_bytes(b"stale")
        (out / "images" / "S1.a" / "sub").mkdir()
        (out / "images" / "S1.a" / "sub" / "0_128.jpg").write_bytes(b"nested")
        (out / "shards" / "shard-000009.tar").write_bytes(b"stale shard")
        keep = [f for f in files if f.name.split(".")[0] in ("S1", "S3")]
        build_dataset(keep, out, DatasetConfig(shard_size=3))
    else:
        raise KeyError(name)
    return out


def _instruct(tmp: Path, name: str) -> Path:
    root, out = _inputs(tmp), tmp / "out"
    caps = root / "features_x" / "captions_t"
    files = [caps / f"{s}.jsonl" for s in ("S3", "S1.a", "S2", "S4", "S5")]
    files.append(root / "instruct_extra" / "S0.jsonl")
    if name == "instruct_offline":
        build_instruct(files, out, InstructConfig(), patches_root=_patches(root))
    elif name == "instruct_llm":
        build_instruct(files, out, InstructConfig(generator="llm", close_per_patch=3, seed=5),
                       patches_root=_patches(root), chat=_llm_chat)
    else:
        raise KeyError(name)
    return out


SCENARIOS = {"dataset_default": _dataset, "dataset_variant": _dataset, "dataset_ivf": _dataset,
             "dataset_rebuild": _dataset, "instruct_offline": _instruct, "instruct_llm": _instruct}


def _parquet_content(path: Path) -> bytes:
    import pyarrow.parquet as pq

    f = pq.ParquetFile(path)
    return json.dumps({"schema": str(f.schema_arrow), "row_groups": f.metadata.num_row_groups,
                       "rows": f.read().to_pylist()}, indent=1, ensure_ascii=False).encode() + b"\n"


def snapshot(out: Path, tmp: Path) -> dict[str, bytes]:
    """Every file under ``out`` -> its bytes, normalised (see the module doc)."""
    snap: dict[str, bytes] = {}
    images = []
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_dir() and not p.is_symlink():
            continue
        data = p.read_bytes()
        if rel.startswith("images/"):
            if p.suffix == ".jpg" and (out / "pathgen_instruct.json").exists():
                images.append(rel)  # instruct: re-encoded, checked against the source below
            else:
                kind = "symlink" if p.is_symlink() else "file"
                images.append(f"{rel} {kind} {hashlib.sha256(data).hexdigest()}")
            continue
        if p.suffix == ".parquet":
            snap[rel + ".content.json"] = _parquet_content(p)
            continue
        if p.suffix in (".json", ".jsonl", ".csv", ".md", ".html"):
            text = data.decode("utf-8").replace(str(tmp), "<ROOT>")
            if p.name == "count.json":
                text = re.sub(r'"fingerprint": "[0-9a-f]{16}"', '"fingerprint": "<fp>"', text)
            data = text.encode("utf-8")
        snap[rel] = data
    snap["images.txt"] = ("\n".join(images) + "\n").encode()
    return snap


def _check_instruct_images(out: Path, tmp: Path) -> None:
    quality = 90
    for p in sorted((out / "images").rglob("*.jpg")):
        wsi, name = p.relative_to(out / "images").parts
        buf = io.BytesIO()
        with Image.open(tmp / "in" / "features_x" / "selection" / "patches" / wsi / name) as im:
            im.convert("RGB").save(buf, format="JPEG", quality=quality)
        assert p.read_bytes() == buf.getvalue(), p


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_outputs_match_the_in_memory_implementation(tmp_path, name):
    out = SCENARIOS[name](tmp_path, name)
    got = snapshot(out, tmp_path)
    ref_dir = REFERENCE / name
    want = {p.relative_to(ref_dir).as_posix(): p.read_bytes()
            for p in sorted(ref_dir.rglob("*")) if p.is_file()}
    assert sorted(got) == sorted(want)
    for rel in want:
        assert got[rel] == want[rel], f"{name}: {rel} differs from the reference"
    if name.startswith("instruct"):
        _check_instruct_images(out, tmp_path)


def regenerate() -> None:
    import tempfile

    for name, fn in SCENARIOS.items():
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            snap = snapshot(fn(tmp, name), tmp)
        ref = REFERENCE / name
        shutil.rmtree(ref, ignore_errors=True)
        for rel, data in snap.items():
            (ref / rel).parent.mkdir(parents=True, exist_ok=True)
            (ref / rel).write_bytes(data)
        print(f"{name}: {len(snap)} files -> {ref}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: python tests/test_build_reference.py --regenerate")
    regenerate()
