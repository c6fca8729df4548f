"""WebDataset shards carry sizes.json, read through open_clip_train's own `get_dataset_size`.

Contract (open_clip_train/data.py): for `--train-data <brace pattern or ::-list>`, it expands the
shard list, opens `sizes.json` in the first shard's folder, a dict shard basename -> sample
count, and sums the counts of the shards given. With that file, `--train-num-samples` is not
needed."""

from __future__ import annotations

import json
import tarfile

import numpy as np
from open_clip_train.data import get_dataset_size  # open_clip_torch[training], pinned
from PIL import Image

from pathgen.dataset.writers import write_shards


def _samples(tmp_path, n):
    out = []
    for i in range(n):
        img = tmp_path / "src" / f"p{i}.png"
        img.parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(img)
        out.append({"key": f"slide_{i}_0", "caption": f"caption {i}", "meta": {"i": i},
                    "src_image": img})
    return out


def _count_in_tar(path) -> int:
    with tarfile.open(path) as tar:
        return sum(m.name.endswith(".txt") for m in tar.getmembers())


def test_open_clip_reads_sizes_json(tmp_path):
    shards = tmp_path / "shards"
    info = write_shards(shards, _samples(tmp_path, 7), shard_size=3)  # 3 + 3 + 1
    assert info["num_shards"] == 3
    sizes = json.loads((shards / "sizes.json").read_text())
    assert sizes == {p.name: _count_in_tar(p) for p in sorted(shards.glob("*.tar"))}

    pattern = str(shards / info["pattern"])
    assert get_dataset_size(pattern) == (7, 3)
    # a subset of the shards (open_clip's '::' list) sums only those
    two = "::".join(str(shards / n) for n in ("shard-000000.tar", "shard-000002.tar"))
    assert get_dataset_size(two) == (4, 2)


def test_sizes_json_follows_a_rebuild_with_fewer_shards(tmp_path):
    shards = tmp_path / "shards"
    write_shards(shards, _samples(tmp_path, 7), shard_size=3)
    info = write_shards(shards, _samples(tmp_path, 4), shard_size=3)  # shard 2 is removed
    assert sorted(json.loads((shards / "sizes.json").read_text())) == ["shard-000000.tar",
                                                                      "shard-000001.tar"]
    assert get_dataset_size(str(shards / info["pattern"])) == (4, 2)
