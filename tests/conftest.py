"""Fixtures shared by the test files.

Test-support code lives in the package ``pathgen_testkit/`` at the repo root (installed with
pathgen by ``pip install -e .``; pathgen itself never imports it, tests/test_layers.py checks):
mock and stand-in model servers, slide / coords / features / selection / caption file makers
(the file writers are pathgen's own), synthetic MIL features, a tiny VLM, workflow workspaces,
the fake and the real SLURM. Test files import it like any package (no ``sys.path`` edits, no
imports from other test files); this file only turns the parts that need pytest's life cycle
into fixtures.
"""

from __future__ import annotations

import pytest

from pathgen_testkit.workspace import Workspace, make_finished_state


@pytest.fixture(scope="module")
def ws(request, tmp_path_factory) -> Workspace:
    """The test module's workflow workspace (pathgen_testkit.workspace), shared by its tests.

    The module builds it with ``build_workspace(root) -> Workspace`` (slides, config, input
    files under ``root``); the fixture then brings it to a finished-run state without running a
    job (every declared output touched, Snakemake's own records written) and checks that a dry
    run has nothing left to do. A test that edits the config restores it afterwards."""
    build = getattr(request.module, "build_workspace", None)
    if build is None:
        pytest.fail(f"{request.module.__name__} uses the `ws` fixture but defines no "
                    "build_workspace(root) -> Workspace")
    return make_finished_state(build(tmp_path_factory.mktemp(request.module.__name__.removeprefix("test_"))))


@pytest.fixture(scope="module")  # held (and locked) only for the module that uses it
def slurm_cluster():
    """A real single-node SLURM for the session (pathgen_testkit.slurm_cluster: skips where
    none can be started, e.g. not root)."""
    from pathgen_testkit.slurm_cluster import running_cluster

    with running_cluster() as info:
        yield info
