"""Histology vocabulary of the rule-based corrupter: swap groups per attribute (a modify edit
replaces a term by another of its group, so the grammar stays intact) and features that an add
edit can insert (each with the pattern that tells whether a description already mentions it).
"""

from __future__ import annotations

# attribute -> groups of interchangeable terms (same part of speech within a group)
SWAP_GROUPS: dict[str, list[list[str]]] = {
    "cell type": [
        ["lymphocytes", "plasma cells", "neutrophils", "eosinophils", "histiocytes",
         "macrophages", "fibroblasts", "adipocytes", "tumour cells", "tumor cells",
         "epithelial cells", "endothelial cells", "smooth muscle cells", "giant cells"],
    ],
    "density": [
        ["dense", "sparse", "crowded", "loose"],
        ["densely", "sparsely", "loosely"],
        ["numerous", "scattered", "few", "abundant", "rare", "occasional"],
        ["hypercellular", "hypocellular"],
    ],
    "arrangement": [
        ["glands", "nests", "sheets", "cords", "papillae", "trabeculae", "lobules", "fascicles"],
        ["glandular", "nested", "papillary", "trabecular", "solid", "cribriform", "acinar",
         "fascicular", "lobular"],
    ],
    "staining": [
        ["eosinophilic", "basophilic", "amphophilic", "clear", "vacuolated", "granular"],
        ["hyperchromatic", "vesicular", "normochromatic"],
    ],
}

# feature -> (pattern that means "already mentioned", sentence an add edit inserts)
ADD_FEATURES: dict[str, tuple[str, str]] = {
    "necrosis": (r"necro", "Foci of coagulative necrosis with karyorrhectic debris are present."),
    "mitoses": (r"mito", "Several mitotic figures are seen."),
    "calcification": (r"calcif", "Scattered psammomatous calcifications are present."),
    "haemorrhage": (r"h(a)?emorrhag|erythrocyt|red blood", "There are areas of fresh haemorrhage."),
    "mucin": (r"mucin|mucus|mucous", "Pools of extracellular mucin are present."),
    "adipose tissue": (r"adipo|\bfat\b", "Lobules of mature adipose tissue are seen."),
    "lymphocytic infiltrate": (r"lymph|inflamm", "A dense lymphocytic infiltrate is present."),
    "giant cells": (r"giant", "Multinucleated giant cells are seen."),
    "pigment": (r"pigment|melanin|h(a)?emosiderin", "Brown pigment-laden macrophages are present."),
    "keratin": (r"kerat", "Keratin pearls are seen."),
    "perineural invasion": (r"perineural|nerve", "Tumour cells surround a small nerve."),
}
