"""Batches of patches from worker processes (torch DataLoader over contiguous chunks).

Patches are visited in row-major order; worker k of n reads the k-th contiguous slice of
that order, so each worker's tile cache sees neighbouring patches. Every batch carries the
row indices of its patches in the coords array, so the consumer can write results in place.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .readers import patch_reader
from .plan import reading_order


class PatchBatches(IterableDataset):
    def __init__(self, slide_path: str | os.PathLike, coords: np.ndarray, size_level0: float,
                 out_size: int, batch_size: int, reader: str = "auto", cache_mb: int = 256,
                 indices: np.ndarray | None = None):
        self.slide_path = str(slide_path)
        self.coords = np.asarray(coords, np.int64).reshape(-1, 2)
        self.size_level0 = float(size_level0)
        self.out_size = int(out_size)
        self.batch_size = int(batch_size)
        self.reader = reader
        self.cache_mb = cache_mb
        order = reading_order(self.coords)
        if indices is not None:  # only these rows (e.g. the ones a resumed run still lacks)
            keep = np.zeros(len(self.coords), bool)
            keep[np.asarray(indices, np.int64)] = True
            order = order[keep[order]]
        self.order = order

    def __len__(self) -> int:  # number of batches (approximate across workers)
        return -(-len(self.order) // self.batch_size)

    def __iter__(self):
        info = get_worker_info()
        k, n = (info.id, info.num_workers) if info else (0, 1)
        part = np.array_split(self.order, n)[k]
        if len(part) == 0:
            return
        with patch_reader(self.slide_path, self.reader, self.cache_mb) as reader:
            for start in range(0, len(part), self.batch_size):
                idx = part[start:start + self.batch_size]
                patches = reader.read_patches(self.coords[idx], self.size_level0, self.out_size)
                yield torch.from_numpy(idx), torch.from_numpy(patches)


def patch_loader(dataset: PatchBatches, num_workers: int = 1, pin_memory: bool = False) -> DataLoader:
    """DataLoader yielding (indices int64 (B,), patches uint8 (B, H, W, 3))."""
    kwargs = {}
    if num_workers > 0:
        kwargs = dict(prefetch_factor=2, persistent_workers=False)
    return DataLoader(dataset, batch_size=None, num_workers=num_workers, pin_memory=pin_memory,
                      **kwargs)
