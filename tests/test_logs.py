"""A job's log file records its warnings and the uncaught exception that killed it."""

import subprocess
import sys


def test_uncaught_exception_and_warnings_reach_the_log_file(tmp_path):
    log = tmp_path / "logs" / "rule" / "job.log"
    code = ("from pathgen.logs import setup_logging\nimport warnings\n"
            f"setup_logging({str(log)!r})\nwarnings.warn('careful')\nraise ValueError('boom')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "ValueError: boom" in proc.stderr
    text = log.read_text()
    assert "UserWarning: careful" in text
    assert "uncaught exception" in text and "ValueError: boom" in text and "Traceback" in text
