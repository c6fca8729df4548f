"""Epoch time of MIL training with bags held in memory vs re-read from HDF5 each epoch.

Same model, same synthetic bags, same seed, one process: the only difference is where each
step's features come from. "CLAM-style" files store features one row per HDF5 chunk (as
CLAM's feature writer does) and are re-read every epoch, as CLAM's dataset does.

    .venv/bin/python bench/mil_epoch.py --slides 24 --patches 4000 --dim 768 --epochs 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from pathgen.mil.bags import BagStore, index_bags
from pathgen.mil.models import build_model
from pathgen.mil.labels import read_labels
from pathgen_testkit.synthetic_mil import synthetic_cohort, write_synthetic_features


def epoch_seconds(model, opt, store: BagStore, ids: list[str], labels: dict[str, int], device: str) -> float:
    t0 = time.perf_counter()
    model.train()
    for sid in ids:
        x = store[sid].features.to(device)
        loss = model.loss(model(x), torch.tensor(labels[sid], device=device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slides", type=int, default=24)
    ap.add_argument("--patches", type=int, default=4000, help="Patches per slide")
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--dtype", default="float16", choices=["float16", "float32"],
                    help="Stored dtype (the paper stores fp16)")
    ap.add_argument("--model", default="abmil")
    ap.add_argument("--hidden-dim", type=int, default=256, help="Model width (evaluation.mil.hidden_dim)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        cohort = synthetic_cohort(args.slides, seed=0, slides_per_patient=(1, 1))
        cohort.to_csv(tmp / "labels.csv", index=False)
        table = read_labels(tmp / "labels.csv", ["c0", "c1"])
        feats = write_synthetic_features(tmp / "clam", table, ["c0", "c1"], dim=args.dim, layout="clam_h5",
                                         n_patches=args.patches, dtype=args.dtype, row_chunks=True)
        ids, labels = list(table.slide_id), dict(zip(table.slide_id, table.y))
        index = index_bags(feats, ids)
        t0 = time.perf_counter()
        stores = {"in-memory": BagStore(index, max_memory_mb=1e9)}
        load_s = time.perf_counter() - t0
        stores["re-read (CLAM-style)"] = BagStore(index, max_memory_mb=0)
        if args.device != "cpu":  # in-memory bags live on the accelerator too
            for b in stores["in-memory"]._bags.values():
                b.features = b.features.to(args.device)
        times = {}
        for name, store in stores.items():
            torch.manual_seed(0)
            model = build_model(args.model, args.dim, 2, hidden_dim=args.hidden_dim,
                                attn_dim=max(4, args.hidden_dim // 2)).to(args.device)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-5)
            epoch_seconds(model, opt, store, ids[:2], labels, args.device)  # warm-up
            runs = [epoch_seconds(model, opt, store, ids, labels, args.device) for _ in range(args.epochs)]
            times[name] = min(runs)
        mem, disk = times["in-memory"], times["re-read (CLAM-style)"]
        print(f"{args.slides} slides x {args.patches} patches x {args.dim} ({args.dtype}), model "
              f"{args.model} (hidden {args.hidden_dim}), device {args.device}, {args.threads} thread(s)")
        print(f"one-off load into memory: {load_s:.2f} s")
        print(f"epoch in-memory: {mem:.3f} s   epoch re-read: {disk:.3f} s   ratio: {disk / mem:.1f}x")


if __name__ == "__main__":
    main()
