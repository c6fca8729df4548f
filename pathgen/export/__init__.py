"""Drop-in outputs for the peers' tools: CLAM's and TRIDENT's coords meaning and folder layouts.

``conventions``: what a coords file's attributes mean to each reader, where they disagree
(warned at run time) and the best pyramid level for a CLAM reader. ``clam`` / ``trident``:
``pathgen export clam`` and ``pathgen export trident`` (``cli``).
"""
