"""The README's stage table stays true: every `pathgen ...` command line it documents is run.

The per-slide chain (tile -> features -> select -> caption -> build-dataset -> instruct) runs for
real, in the table's order, on one small real Aperio slide with the repo's config.yaml (demo
off, tiny-demo encoder, morphometric captions). Commands that need a whole workflow run
(train, zeroshot, MIL, report, exports, agents) are parsed by the real CLI parser, so a flag
the table shows but the CLI lacks fails here. A documented subcommand that this file does
not know fails too: extend RUN or PARSE_ONLY when the table grows.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from pathgen.cli import build_parser, main
from pathgen.config.layers import with_demo_overlay
from pathgen_testkit.slide_files import write_real_slides

REPO = Path(__file__).resolve().parents[1]
RUN = ("tile", "features", "select", "caption", "build-dataset", "instruct")
PARSE_ONLY = ("demo-slides", "demo-benchmark", "export", "agents", "train", "baseline-data",
              "zeroshot", "zeroshot-export", "mil", "report")


def documented_commands() -> list[list[str]]:
    """Command lines of the README's stage table, in table order, optional [..] parts kept."""
    text = (REPO / "README.md").read_text()
    table = text.split("| stage | rule(s) | command | details |", 1)[1].split("\n\n", 1)[0]
    out = []
    for row in table.splitlines()[2:]:
        cell = row.split("|")[3]
        for cmd in re.findall(r"`(pathgen [^`]+)`", cell):
            out.append(shlex.split(cmd.replace("[", "").replace("]", ""))[1:])
    return out


class ReadmeWorkspace:
    """A folder with one real slide and the repo's config, where the README's command lines run."""

    def __init__(self, root: Path):
        self.root = root
        self.slide = write_real_slides(root / "slides", 1, size=1024)[0]
        # the demo's offline settings (tiny-demo, morphometric captions), on one real slide
        cfg = with_demo_overlay(yaml.safe_load((REPO / "config.yaml").read_text()))
        cfg["results_dir"] = str(root / "results")
        cfg["demo"]["enabled"] = False
        cfg["slides"] = {"dir": str(root / "slides")}
        cfg["features"].update(device="cpu", num_workers=0, batch_size=16)
        self.config = root / "config.yaml"
        self.config.write_text(yaml.safe_dump(cfg, sort_keys=False))
        sid = self.slide.stem
        self.files = {"SLIDE": str(self.slide), "NAME": "tiny-demo", "CSV": str(root / "labels.csv")}
        self.id_files = {"coords/ID.h5": root / "coords" / f"{sid}.h5",
                         "feats/ID.h5": root / "feats" / f"{sid}.h5",
                         "sel/ID.csv": root / "sel" / f"{sid}.csv",
                         "captions/ID.jsonl": root / "captions" / f"{sid}.jsonl"}

    def argv(self, doc: list[str]) -> list[str]:
        """The documented line with its placeholders filled in (a DIR after --out is a fresh folder)."""
        out = []
        for i, tok in enumerate(doc):
            if tok == "DIR":
                flag = doc[i - 1]
                out.append(str(self.root / ("patches" if flag == "--patches-root" else
                                            f"{doc[0]}_{flag.strip('-')}")))
            elif tok == "captions/*.jsonl":  # the shell's glob
                out += sorted(str(p) for p in (self.root / "captions").glob("*.jsonl")) or [tok]
            elif tok in self.id_files:
                self.id_files[tok].parent.mkdir(parents=True, exist_ok=True)
                out.append(str(self.id_files[tok]))
            else:
                out.append(self.files.get(tok, tok))
        return out + ["--config", str(self.config)]


@pytest.fixture(scope="module")
def readme_ws(tmp_path_factory):
    return ReadmeWorkspace(tmp_path_factory.mktemp("readme_cmds"))


def test_every_documented_subcommand_is_covered():
    subs = [d[0] for d in documented_commands()]
    assert set(RUN) <= set(subs), f"the README's stage table lost commands: {set(RUN) - set(subs)}"
    unknown = set(subs) - set(RUN) - set(PARSE_ONLY)
    assert not unknown, f"README documents {sorted(unknown)}: add them to RUN or PARSE_ONLY here"


def test_documented_per_slide_chain_runs(readme_ws, capsys):
    ws = readme_ws
    done = []
    for doc in documented_commands():
        if doc[0] not in RUN:
            continue
        argv = ws.argv(doc)
        rc = main(argv)
        assert rc == 0, f"documented command failed (rc {rc}): pathgen {' '.join(argv)}"
        done.append(doc[0])
    assert done == list(RUN), f"run order {done} is not the pipeline's order {RUN}"
    r = ws.root
    assert all(f.is_file() for f in ws.id_files.values()), ws.id_files
    assert list((r / "patches" / ws.slide.stem).iterdir()), "select wrote no patch into <root>/<slide id>"
    assert any((r / "build-dataset_out").iterdir()) and any((r / "instruct_out").iterdir())


@pytest.mark.parametrize("doc", [d for d in documented_commands() if d[0] in PARSE_ONLY],
                         ids=lambda d: " ".join(d))
def test_documented_command_parses(readme_ws, doc):
    ws = readme_ws
    argv = ws.argv(doc)
    try:
        build_parser().parse_args(argv)
    except SystemExit as err:
        pytest.fail(f"the README documents `pathgen {' '.join(doc)}` but the CLI rejects it "
                    f"(exit {err.code})")
