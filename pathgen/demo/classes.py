"""Tissue classes of the demo slides: codes (GeoJSON `classification.name`, zero-shot folder
names), the class texts used for zero-shot prompts, CONCH-style synonyms and display colours."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TissueClass:
    code: str  # label-map value order is the tuple order below (background = 0)
    text: str  # class text for "An H&E image of {}."
    synonyms: tuple[str, ...]
    color: tuple[int, int, int]  # QuPath classification colour


TISSUE_CLASSES: tuple[TissueClass, ...] = (
    TissueClass("stroma", "fibrous stroma",
                ("fibrous stroma", "collagenous stroma", "connective tissue", "fibrosis"), (150, 200, 150)),
    TissueClass("tumor", "tumor epithelium",
                ("tumor epithelium", "carcinoma", "invasive carcinoma", "malignant epithelium",
                 "adenocarcinoma"), (200, 0, 0)),
    TissueClass("lymphocytes", "lymphocytes",
                ("lymphocytes", "lymphoid aggregate", "immune cells", "lymphocytic infiltrate"),
                (160, 90, 160)),
    TissueClass("adipose", "adipose tissue",
                ("adipose tissue", "fat", "adipocytes", "fatty tissue"), (250, 210, 100)),
    TissueClass("necrosis", "necrosis",
                ("necrosis", "necrotic tissue", "tumor necrosis", "necrotic debris"), (60, 60, 60)),
    TissueClass("benign", "benign glandular epithelium",
                ("benign glandular epithelium", "normal glands", "normal epithelium",
                 "benign glands"), (20, 120, 220)),
)
CLASS_INDEX = {c.code: i + 1 for i, c in enumerate(TISSUE_CLASSES)}  # label-map values
BY_CODE = {c.code: c for c in TISSUE_CLASSES}
