"""Test support for pathgen's tests and benchmarks, not part of the product (pathgen never
imports it: tests/test_layers.py). Stand-ins that exercise the real code paths without GPUs,
model weights or a cluster, and input files written by pathgen's own writers:

- ``mock_chat_server``: an in-process OpenAI-compatible chat server with canned replies and
  scripted faults; ``standin_server``: the same as a separate process that behaves like vLLM's
  (``captioning.server.engine: command``);
- ``tiny_vlm``: a tiny randomly initialised LLaVA / Qwen2-VL built offline;
- ``slide_files``: small real SVS / TIFF slides; ``feature_files``: coords and features HDF5
  (pathgen's writers); ``patches``: synthetic H&E patches and selection files;
  ``caption_files``, ``toy_captions``, ``chunk_outcomes``, ``caption_audit``, ``training``:
  the files other stages read; ``synthetic_mil``: synthetic MIL bags in pathgen's, TRIDENT's,
  CLAM's and STAMP's layouts;
- ``workspace``: scratch workflow workspaces running the real Snakefile;
  ``slurm_cluster``: a real one-node SLURM (root); ``fake_slurm``: a fake SLURM client for
  bench/submissions.py.

tests/conftest.py turns the parts that need pytest's life cycle into fixtures.
"""
