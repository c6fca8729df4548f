"""Peak memory of `build_dataset` (and `build_instruct`) against the number of caption records.

Writes synthetic caption-stage output for `--sizes` records (default 20,000 and 200,000):
per-slide `<slide>.jsonl` + `.rejects.jsonl` + `.summary.json` of `--per-slide` patches, made
the way the caption stage makes them (`pipeline.base_record` filled like the three agents do,
`stage.summarize_records`, the `jsonl_store.write_jsonl` / `atomic.write_json` writers), with
describe / revise / caption texts of realistic length (~1,500 / ~1,100 / ~330 characters),
~85 % accepted. A slide's patch images are hard links to one small JPEG (the builder needs a
file per record, not distinct bytes). Then each build runs in its own fresh subprocess, which
reports its own peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`: Python + open_clip's
tokenizer import + the build) and wall time.

    .venv/bin/python bench/dataset_memory.py                         # 20k and 200k (~10 min)
    .venv/bin/python bench/dataset_memory.py --sizes 2000,20000      # quick
    .venv/bin/python bench/dataset_memory.py --instruct-sizes 20000,200000   # + build_instruct

Ends with exactly one line
``dataset_memory: records=N peak_rss_mb=X ratio_vs_20k=R seconds=S`` for the largest size
(R: its peak over the smallest size's; the goal is R <= 1.15, i.e. memory that does not grow
with the records).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

WORDS = ("tumour epithelium nests glands stroma fibrous collagen nuclei enlarged hyperchromatic "
         "pleomorphic crowded mitoses lymphocytes adipose vacuoles necrosis debris eosinophilic "
         "cytoplasm cribriform solid sheets papillary cells small round dark nucleoli scant "
         "abundant loose dense oedematous haemorrhage inflammatory infiltrate benign atypical "
         "architecture lumina basement membrane vessels capillaries spindle").split()
REASONS = ("too_short", "refusal", "repeated_ngrams", "low_alignment")


def _rss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024  # Linux: KiB


def _text(rng, n_chars: int) -> str:
    out, size = [], 0
    while size < n_chars:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 18)))
        out.append(sentence.capitalize() + ".")
        size += len(out[-1]) + 1
    return " ".join(out)


def make_captions(root: Path, n_records: int, per_slide: int, seed: int = 0) -> list[Path]:
    """Caption-stage files for `n_records` patches; returns the final `<slide>.jsonl` paths."""
    import random

    from PIL import Image

    from pathgen.atomic import write_json
    from pathgen.captioning.files import caption_files
    from pathgen.captioning.items import PatchItem
    from pathgen.captioning.pipeline import AgentSettings, base_record, edit_ratio
    from pathgen.captioning.stage import summarize_records
    from pathgen.jsonl_store import write_jsonl

    rng = random.Random(seed)
    features = root / "features_bench"
    captions, patches = features / "captions_bench", features / "selection" / "patches"
    captions.mkdir(parents=True, exist_ok=True)
    backend = SimpleNamespace(name="openai", model="Qwen/Qwen2-VL-7B-Instruct",
                              agent_models=lambda: {"describe": "Qwen/Qwen2-VL-7B-Instruct"})
    settings = AgentSettings(templates=None, budget=None, prompt_hash="0123456789ab",
                             provenance={"pathgen_version": "bench", "prompt_version": "v1",
                                         "clip_arch": "ViT-B-16", "token_budget": 77})
    files, done = [], 0
    for s in range((n_records + per_slide - 1) // per_slide):
        slide = f"TCGA-BENCH-{s:05d}-01Z-00-DX1"
        n = min(per_slide, n_records - done)
        (patches / slide).mkdir(parents=True, exist_ok=True)
        one = patches / f"{slide}.jpg"  # the slide's patches are links to it (ext4: < 65,000 links)
        Image.new("RGB", (32, 32), (200, s % 256, 180)).save(one, quality=90)
        records = []
        for i in range(n):
            x, y = 672 * (i % 16), 672 * (i // 16)
            image = f"{slide}/{x}_{y}.jpg"
            os.link(one, patches / image)
            item = PatchItem(slide, x, y, 0, 672, 224, image, patches / image, 0.5)
            rec = base_record(item, backend, settings)
            describe, revise = _text(rng, rng.randint(1200, 1800)), _text(rng, rng.randint(900, 1300))
            caption = _text(rng, rng.randint(250, 420))
            ok = rng.random() < 0.85
            rec.update(describe=describe, revise=revise, caption=caption,
                       revise_changed=True, revise_edit_ratio=edit_ratio(describe[:200], revise[:200]),
                       n_tokens=len(caption.split()) + 2, accepted=ok,
                       reject_reasons=[] if ok else [rng.choice(REASONS)],
                       timings={"describe": 0.4, "revise": 0.3, "summarize": 0.2, "total": 0.9},
                       attempts={"describe": 1, "revise": 1, "summarize": 1})
            rec["provenance"].update(summary_reasks=0, truncated=False)
            records.append(rec)
        paths = caption_files(captions / f"{slide}.jsonl")
        summary = summarize_records(records, slide, backend.name, backend.model,
                                    settings.prompt_hash, 1.0, n)
        write_jsonl(paths["rejects"], [r for r in records if not r["accepted"]])
        write_json(paths["summary"], summary)
        write_jsonl(paths["captions"], records)
        files.append(paths["captions"])
        done += n
    return files


def child(kind: str, captions_dir: str, out: str) -> None:
    """One build in this (fresh) process; prints its peak RSS and time as JSON."""
    files = sorted(Path(captions_dir).glob("*.jsonl"))
    files = [f for f in files if not f.name.endswith((".rejects.jsonl", ".partial.jsonl"))]
    t = time.perf_counter()
    if kind == "dataset":
        from pathgen.config.dataset import DatasetConfig
        from pathgen.dataset.build import build_dataset

        card = build_dataset(files, out, DatasetConfig())
        n = card["n_pairs"]
    else:
        from pathgen.config.instruct import InstructConfig
        from pathgen.instruct.build import build_instruct

        card = build_instruct(files, out, InstructConfig(),
                              patches_root=Path(captions_dir).parent / "selection" / "patches")
        n = card["n_items"]
    print(json.dumps({"outputs": n, "seconds": round(time.perf_counter() - t, 1),
                      "peak_rss_mb": round(_rss_mb(), 1)}))


def measure(kind: str, captions_dir: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(captions_dir), str(out)],
                          capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{kind} build failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="20000,200000", help="caption records per dataset build")
    ap.add_argument("--instruct-sizes", default="", help="also build_instruct at these sizes")
    ap.add_argument("--per-slide", type=int, default=256, help="patches per slide")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "CAPTIONS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    isizes = [int(s) for s in args.instruct_sizes.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="dataset_memory.", dir=args.work))
    results = {}
    try:
        for kind, kind_sizes in (("instruct", isizes), ("dataset", sizes)):
            for n in kind_sizes:
                root = work / f"n{n}"
                if not root.exists():
                    t = time.perf_counter()
                    make_captions(root, n, args.per_slide)
                    print(f"wrote {n} caption records in {time.perf_counter() - t:.0f} s", flush=True)
                caps = root / "features_bench" / "captions_bench"
                r = measure(kind, caps, root / f"out_{kind}")
                results[(kind, n)] = r
                print(f"{kind}: records={n} outputs={r['outputs']} peak_rss_mb={r['peak_rss_mb']:.0f} "
                      f"seconds={r['seconds']:.1f}", flush=True)
                shutil.rmtree(root / f"out_{kind}", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(isizes) > 1:
        lo, hi = results[("instruct", isizes[0])], results[("instruct", isizes[-1])]
        print(f"instruct_memory: records={isizes[-1]} peak_rss_mb={hi['peak_rss_mb']:.0f} "
              f"ratio_vs_{isizes[0] // 1000}k={hi['peak_rss_mb'] / lo['peak_rss_mb']:.2f} "
              f"seconds={hi['seconds']:.0f}")
    lo, hi = results[("dataset", sizes[0])], results[("dataset", sizes[-1])]
    print(f"dataset_memory: records={sizes[-1]} peak_rss_mb={hi['peak_rss_mb']:.0f} "
          f"ratio_vs_{sizes[0] // 1000}k={hi['peak_rss_mb'] / lo['peak_rss_mb']:.2f} "
          f"seconds={hi['seconds']:.0f}")


if __name__ == "__main__":
    main()
