"""The demonstration runs end to end on both backends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cqrs_ddd_persistence_sqlalchemy.demo import run_demo


async def test_the_demo_runs_on_the_backend(db_url: str) -> None:
    lines: list[str] = []
    await run_demo(db_url, out=lines.append)
    text = "\n".join(lines)
    assert "order-03: status=shipped version=2" in text
    assert "OptimisticConcurrencyError" in text
    assert lines[-1].strip() == "Summary: 12 orders stored, 1 shipped, 1 conflict caught."
    # Running it again starts from a clean slate.
    lines.clear()
    await run_demo(db_url, out=lines.append)
    assert lines[-1].strip() == "Summary: 12 orders stored, 1 shipped, 1 conflict caught."


def test_the_command_line_runs_the_demo_on_an_sqlite_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cqrs_ddd_persistence_sqlalchemy", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "1 conflict caught" in result.stdout
    assert (tmp_path / "cqrs_ddd_demo.db").exists()
