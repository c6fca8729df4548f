"""Test support for pathgen's tests and benchmarks (not part of the product): stand-in
servers and helpers that exercise the real code paths without GPUs or model weights."""
