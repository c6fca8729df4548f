"""Captioning stage: describe -> revise -> summarize agents over selected patches.

Kept import-light (the config's ``tag()`` imports :mod:`.prompts`); import the pieces you
need from their modules: :mod:`.stage` (per-slide run), :mod:`.backends` (factory),
:mod:`.budget`, :mod:`.filters`, :mod:`.store`.
"""
