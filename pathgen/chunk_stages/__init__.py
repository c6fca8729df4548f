"""One module per per-slide stage, run slide by slide by pathgen.chunk_run.

Each defines ``run(ctx, slide) -> dict`` (the same library call as the stage's `pathgen`
subcommand; returns a small summary for the state record), ``outputs(layout, slide)`` (the
slide's output paths: all must exist for a finished record to be reused) and
``input_key(ctx, slide)`` (what besides the settings and the upstream fingerprint shapes the
outputs). Optional: ``needs_redo(record)`` (a finished record that must still be redone) and
``after_chunk(ctx, chunk, members)`` (bookkeeping once the chunk's slides are done).
"""
