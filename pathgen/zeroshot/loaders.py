"""Zero-shot dataset loaders, one per on-disk layout users download.

Each returns a :class:`Samples` (image sources + integer labels in ``Benchmark.classes``
order); images are read lazily. Layouts follow the public releases:
- imagefolder: ``<root>/<class code>/<image>`` (torchvision ImageFolder; CRC100K, BACH, LC25000).
- csv: a table of image name + label (OSTEO ``ML_Features_1144.csv``; SKINCANCER
  ``tiles-v2.csv`` with ``file``, ``class`` and a ``set`` column (Train/Validation/Test): its
  Test rows are scored; MHIST ``annotations.csv`` with a ``Partition`` column).
- pcam_h5: PatchCamelyon ``camelyonpatch_level_2_split_test_x.h5`` (``x``: N,96,96,3 uint8)
  and ``..._y.h5`` (``y``: N,1,1,1).
- sicap: SICAPv2 ``images/`` + ``partition/Test/Test.xlsx`` (``image_name`` + one-hot NC, G3,
  G4, G5, G4C); G4C rows and multi-label rows are dropped.
- wsss4luad: ``1.training/*.png`` named ``...-[tumor, stroma, normal].png``; tumor if the first
  flag is 1, else normal.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..config.base import ConfigError
from .benchmarks import Benchmark

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


@dataclass
class Samples:
    sources: list            # file paths, or indices into `array`
    labels: np.ndarray       # int64, index into Benchmark.classes
    ids: list[str]           # per-sample identifier written to predictions.csv
    array: object = None     # h5py dataset for pcam_h5 (read lazily)

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> Image.Image:
        src = self.sources[i]
        if self.array is not None:
            return Image.fromarray(np.asarray(self.array[src], dtype=np.uint8)).convert("RGB")
        try:
            with Image.open(src) as im:
                return im.convert("RGB")
        except (OSError, ValueError) as err:
            raise OSError(f"cannot read benchmark image {src}: {err}") from None

    def subset(self, idx: np.ndarray) -> "Samples":
        return Samples([self.sources[i] for i in idx], self.labels[idx],
                       [self.ids[i] for i in idx], self.array)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def load_imagefolder(bm: Benchmark) -> Samples:
    sources, labels = [], []
    missing = [c for c in bm.classes if not (bm.root / c).is_dir()]
    if missing:
        found = sorted(d.name for d in bm.root.iterdir() if d.is_dir())
        raise FileNotFoundError(f"benchmark {bm.name}: class folders {missing} missing under "
                                f"{bm.root} (found {found}); the imagefolder layout is "
                                "<root>/<class code>/<image>")
    for k, code in enumerate(bm.classes):
        files = _images_in(bm.root / code)
        if not files:
            log.warning("benchmark %s: class folder %s has no images", bm.name, bm.root / code)
        sources += files
        labels += [k] * len(files)
    return Samples(sources, np.asarray(labels, dtype=np.int64),
                   [str(p.relative_to(bm.root)) for p in sources])


def _map_label(bm: Benchmark, raw: str, where: str) -> int:
    value = bm.label_map.get(raw, raw)
    if value not in bm.classes:
        raise ConfigError(f"{where}: label {raw!r} is not a class ({', '.join(bm.classes)}); add it "
                          "to the benchmark's label_map")
    return bm.classes.index(value)


def load_csv(bm: Benchmark) -> Samples:
    opts = bm.options
    for key in ("csv_file", "image_key", "label_key"):
        if key not in opts:
            raise ConfigError(f"benchmark {bm.name} (csv layout) needs `{key}`")
    path = bm.root / opts["csv_file"]
    if not path.is_file():
        raise FileNotFoundError(f"benchmark {bm.name}: table {path} not found")
    df = pd.read_csv(path, sep=None, engine="python", dtype=str, keep_default_na=False)
    for key in ("image_key", "label_key", "split_key"):
        if key in opts and opts[key] not in df.columns:
            raise ConfigError(f"{path}: column {opts[key]!r} ({key}) not found; columns are "
                              f"{list(df.columns)}")
    if "split_key" in opts:
        df = df[df[opts["split_key"]].str.strip().str.lower() == str(opts.get("split_value", "test")).lower()]
    if "split_key" in opts and df.empty:
        raise ConfigError(f"{path}: no row has {opts['split_key']} == "
                          f"{opts.get('split_value', 'test')!r} (set split_value)")
    image_dir = bm.root / opts.get("image_dir", "")
    sources, labels = [], []
    for raw_img, raw_lab in zip(df[opts["image_key"]], df[opts["label_key"]]):
        sources.append(_csv_image(bm.root, image_dir, raw_img.strip()))
        labels.append(_map_label(bm, raw_lab.strip(), str(path)))
    missing = [s for s in sources if not s.exists()]
    if missing:
        raise FileNotFoundError(f"benchmark {bm.name}: {len(missing)} images listed in {path} are "
                                f"missing, e.g. {missing[0]} (set image_dir?)")
    return Samples(sources, np.asarray(labels, dtype=np.int64),
                   [str(s.relative_to(bm.root)) for s in sources])


def _csv_image(root: Path, image_dir: Path, raw: str) -> Path:
    """The file a table row names. Tables list paths relative to the table's folder, or (as
    SkinCancer's ``tiles-v2.csv``: ``data/tiles/<class>/<tile>``) relative to the folder the
    archive was unpacked in, i.e. starting with the root folder's own name."""
    img = image_dir / raw
    parts = Path(raw).parts
    if not img.exists() and len(parts) > 1 and parts[0] == root.name:
        img = root.parent / raw
    if not img.suffix and not img.exists():
        img = next((img.with_suffix(s) for s in (".png", ".jpg", ".tif")
                    if img.with_suffix(s).exists()), img)
    return img


def load_pcam(bm: Benchmark) -> Samples:
    import h5py

    xs = sorted(bm.root.glob("*_x.h5"))
    test = [p for p in xs if "test" in p.name]
    x_path = (test or xs or [None])[0]
    if x_path is None:
        raise FileNotFoundError(f"benchmark {bm.name}: no camelyonpatch_*_x.h5 under {bm.root} "
                                "(gunzip the PatchCamelyon downloads there)")
    y_path = x_path.with_name(x_path.name.replace("_x.h5", "_y.h5"))
    if not y_path.is_file():
        raise FileNotFoundError(f"benchmark {bm.name}: labels {y_path} missing next to {x_path}")
    try:
        xf, yf = h5py.File(x_path, "r"), h5py.File(y_path, "r")
        x, y = xf["x"], np.asarray(yf["y"]).reshape(-1).astype(np.int64)
    except (OSError, KeyError) as err:
        raise ConfigError(f"benchmark {bm.name}: {x_path}/{y_path} are not PatchCamelyon HDF5 "
                          f"files with datasets 'x' and 'y' ({err})") from None
    if x.ndim != 4 or x.shape[-1] != 3 or len(x) != len(y):
        raise ConfigError(f"{x_path}: expected x (N,H,W,3) matching y (N,1,1,1); got {x.shape} "
                          f"and {len(y)} labels")
    labels = np.asarray([_map_label(bm, str(v), str(y_path)) for v in y], dtype=np.int64)
    return Samples(list(range(len(y))), labels, [f"{x_path.name}:{i}" for i in range(len(y))], x)


SICAP_CLASSES = ("NC", "G3", "G4", "G5")


def load_sicap(bm: Benchmark) -> Samples:
    sheet = bm.root / bm.options.get("partition", "partition/Test/Test.xlsx")
    if not sheet.is_file():
        raise FileNotFoundError(f"benchmark {bm.name}: partition sheet {sheet} not found (SICAPv2 "
                                "layout: images/ + partition/Test/Test.xlsx)")
    try:
        df = pd.read_excel(sheet)
    except ImportError as err:
        raise ImportError(f"reading {sheet} needs openpyxl: pip install openpyxl ({err})") from None
    need = ["image_name", *SICAP_CLASSES]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ConfigError(f"{sheet}: columns {missing} missing (have {list(df.columns)})")
    onehot = df[list(SICAP_CLASSES)].fillna(0).astype(int).to_numpy()
    keep = onehot.sum(axis=1) == 1
    if "G4C" in df.columns:
        keep &= df["G4C"].fillna(0).astype(int).to_numpy() == 0
    df, onehot = df[keep], onehot[keep]
    image_dir = bm.root / bm.options.get("image_dir", "images")
    sources = [image_dir / str(n) for n in df["image_name"]]
    missing = [s for s in sources if not s.exists()]
    if missing:
        raise FileNotFoundError(f"benchmark {bm.name}: {len(missing)} images of {sheet} missing "
                                f"from {image_dir}, e.g. {missing[0].name}")
    labels = [_map_label(bm, SICAP_CLASSES[int(np.argmax(r))], str(sheet)) for r in onehot]
    return Samples(sources, np.asarray(labels, dtype=np.int64), [s.name for s in sources])


_WSSS_FLAGS = re.compile(r"\[\s*([01])\s*,\s*([01])\s*,\s*([01])\s*\]")


def load_wsss4luad(bm: Benchmark) -> Samples:
    folder = bm.root / bm.options.get("image_dir", "1.training")
    if not folder.is_dir():
        raise FileNotFoundError(f"benchmark {bm.name}: {folder} not found (WSSS4LUAD layout: "
                                "1.training/<name>-[a, b, c].png)")
    sources, labels = [], []
    for p in _images_in(folder):
        m = _WSSS_FLAGS.search(p.name)
        if not m:
            raise ConfigError(f"{p}: file name has no '[tumor, stroma, normal]' flags as in "
                              "'...-[1, 0, 0].png'")
        sources.append(p)
        labels.append(_map_label(bm, "tumor" if m.group(1) == "1" else "normal", str(p)))
    if not sources:
        raise FileNotFoundError(f"benchmark {bm.name}: no images in {folder}")
    return Samples(sources, np.asarray(labels, dtype=np.int64), [p.name for p in sources])


LOADERS = {"imagefolder": load_imagefolder, "csv": load_csv, "pcam_h5": load_pcam,
           "sicap": load_sicap, "wsss4luad": load_wsss4luad}


def load_samples(bm: Benchmark, seed: int = 0) -> Samples:
    samples = LOADERS[bm.layout](bm)
    if len(samples) == 0:
        raise FileNotFoundError(f"benchmark {bm.name}: no images found under {bm.root}")
    if bm.max_images and len(samples) > bm.max_images:
        samples = samples.subset(stratified_subset(samples.labels, bm.max_images, seed))
    return samples


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Seeded subsample of ``n`` indices keeping class proportions (each class >= 1)."""
    rng = np.random.default_rng(seed)
    picked = []
    classes, counts = np.unique(labels, return_counts=True)
    for c, cnt in zip(classes, counts):
        k = max(1, int(round(n * cnt / len(labels))))
        idx = np.flatnonzero(labels == c)
        picked.append(rng.choice(idx, size=min(k, cnt), replace=False))
    return np.sort(np.concatenate(picked))
