"""The public API's static types and the distribution's version metadata."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import cqrs_ddd_persistence_sqlalchemy

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def test_the_public_types_are_what_check_public_types_asserts() -> None:
    # The project's mypy configuration (pydantic plugin) applies; --strict as for src.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--strict",
            str(HERE),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_installed_version_is_the_package_version() -> None:
    installed = version("cqrs-ddd-persistence-sqlalchemy")
    assert installed == cqrs_ddd_persistence_sqlalchemy.__version__, (
        "the installed metadata is stale: reinstall (pip install -e .) after changing _version.py"
    )
