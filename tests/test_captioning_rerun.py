"""Every agent setting reaches the caption rule's params: changing one agent's backend (or any
other captioning.agents key) reruns the caption jobs and what follows, nothing upstream."""

from __future__ import annotations

from pathgen_testkit.workspace import fake_slide_workspace, make_finished_state, parse_jobs

UPSTREAM = {"tile", "extract_features", "select_patches"}


def test_an_agent_setting_reruns_captioning_only(tmp_path):
    ws = make_finished_state(fake_slide_workspace(tmp_path, 2, cluster={"chunk_size": 2},
                                                  evaluation={"mil": {"enabled": False}}))
    # the measurement-based baseline checks the revise step explicitly (same backend, new key)
    ws.write_config(captioning={"agents": {"revise": {"backend": "morphometric"}}})
    rules = {r for r, _, _ in parse_jobs(ws.dry_run(quiet=False).text)}
    assert "caption" in rules and not rules & UPSTREAM, rules
