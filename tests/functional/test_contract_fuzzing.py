"""Schema fuzzing: schemathesis against the running store's own OpenAPI document.

Every schemathesis check runs (no 5xx, status codes, content types, headers and bodies as
documented, valid data accepted and invalid data refused, Allow headers, auth enforced), across
its examples, coverage, fuzzing and stateful phases, with a manager's token (the role every
route admits), plus the check in ``schemathesis_hooks.py``. Any failure fails the test with
schemathesis's own report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.functional.conftest import Live, _env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def test_schemathesis_finds_no_server_error_and_no_mismatch(live: Live, tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{live.base_url}/api/v1/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: Bearer {live.tokens['manager']}",
            "--seed",
            "20261127",
            "--workers",
            "1",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=_env(PYTHONPATH=str(ROOT)),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-12_000:] + proc.stderr[-3000:]
    assert report.is_file()
    assert 'failures="0"' in report.read_text()
