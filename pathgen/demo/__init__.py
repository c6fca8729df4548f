"""Embedded demo data: synthetic H&E whole-slide images written as real Aperio SVS files,
their ground-truth regions and labels, and a patch-level zero-shot benchmark cut from them."""
