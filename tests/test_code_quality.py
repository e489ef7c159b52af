"""The house rules that tools can check: ruff and mypy clean, and the layering between packages."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_engine_knows_nothing_of_grpc_or_databases() -> None:
    assert not _imports("asr_engine") & {
        "grpc",
        "grpc_status",
        "sqlalchemy",
        "alembic",
        "service",
        "lingting",
    }


def test_service_knows_nothing_of_tensors() -> None:
    assert not _imports("service") & {"torch", "numpy"}


@pytest.mark.slow
def test_ruff_is_clean() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "asr_engine", "service"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_proto_passes_buf_lint_standard_and_comments() -> None:
    if shutil.which("npm") is None:
        pytest.skip("buf comes from the npm registry; npm is not installed")
    done = subprocess.run(
        ["bash", "scripts/buf_lint.sh"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
