"""Logging set-up shared by the CLI and the workflow scripts."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def setup_logging(log_file: str | Path | None = None, level: int = logging.INFO) -> None:
    """Log to stderr, and also to ``log_file`` when given (Snakemake's `log:`).

    Warnings and an uncaught exception go to the same handlers, so a rule's log file says
    why its job died (Snakemake itself shows only the job's stderr)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=level, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    if log_file:
        sys.excepthook = _log_uncaught


def _log_uncaught(exc_type, exc, tb) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    # to the log file only: the stderr handler would print it a second time beside Python's own
    log = logging.getLogger("pathgen")
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler):
            h.handle(log.makeRecord("pathgen", logging.CRITICAL, __file__, 0,
                                    "uncaught exception, the job fails", (), (exc_type, exc, tb)))
    sys.__excepthook__(exc_type, exc, tb)


def progress_enabled() -> bool:
    """Progress bars in an interactive CLI; quiet when stderr is a log file (Snakemake)."""
    return sys.stderr.isatty()
