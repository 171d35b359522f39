"""The shell scripts and the package metadata a new user meets first."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_demo_help_does_not_install_anything():
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "demo.sh"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
    )
    assert proc.stdout.startswith("usage: fixer_run.py")
    assert "Installing" not in proc.stdout + proc.stderr


def test_every_console_script_imports():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for name, target in project.get("scripts", {}).items():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), name
