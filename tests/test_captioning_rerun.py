"""Every agent setting reaches the caption rule's params: changing one agent's backend (or any
other captioning.agents key) reruns the caption jobs and what follows, nothing upstream."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "slurm"))
from workspace import fake_slide_workspace, make_touched_state, parse_jobs  # noqa: E402

UPSTREAM = {"tile", "extract_features", "select_patches"}


def test_an_agent_setting_reruns_captioning_only(tmp_path):
    ws = fake_slide_workspace(tmp_path, 2, cluster={"chunk_size": 2},
                              evaluation={"mil": {"enabled": False}})
    make_touched_state(ws)
    assert {r for r, _, _ in parse_jobs(ws.dry_run(quiet=False).text)} <= {"all"}
    # the measurement-based baseline checks the revise step explicitly (same backend, new key)
    ws.write_config(captioning={"agents": {"revise": {"backend": "morphometric"}}})
    rules = {r for r, _, _ in parse_jobs(ws.dry_run(quiet=False).text)}
    assert "caption" in rules and not rules & UPSTREAM, rules
