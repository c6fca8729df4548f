"""Drop-in outputs for the peers' tools: CLAM's and TRIDENT's coords meaning and folder layouts.

What a coords file's attributes mean to each reader, where they disagree (warned at tiling
time) and the best pyramid level for a CLAM reader: :mod:`pathgen.tiling.conventions` (tiling
writes those attributes). ``files``: the peers' folder layouts. ``clam`` / ``trident``:
``pathgen export clam`` and ``pathgen export trident`` (``cli``).
"""
