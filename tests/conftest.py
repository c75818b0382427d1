"""Test-run set-up: make `ansible_collections.llmops.devbox` importable from a clone (scripts/setup.sh
links it), and fail the run when a test is skipped for a reason not listed in tests/allowed-skips.txt."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".collections"))


# --- skips must be explained -------------------------------------------------------------------
ALLOWED_SKIPS = ROOT / "tests" / "allowed-skips.txt"
_unlisted_skips: list[str] = []


def _allowed_reasons() -> list[str]:
    lines = ALLOWED_SKIPS.read_text().splitlines() if ALLOWED_SKIPS.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def pytest_runtest_logreport(report):
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    if not any(allowed in reason for allowed in _allowed_reasons()):
        _unlisted_skips.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    if _unlisted_skips and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if _unlisted_skips:
        terminalreporter.section("skipped without a reason listed in tests/allowed-skips.txt")
        for line in _unlisted_skips:
            terminalreporter.line(line)
        terminalreporter.line("FAILED: a skipped test must run, or its reason must be listed in that file")
