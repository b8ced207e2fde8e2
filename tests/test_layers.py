"""Layering rules checked on the source: `core/` reads no environment variable (settings come
from `service.settings` and are passed down)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _environment_reads(path: Path) -> list[str]:
    """`os.environ`, `os.getenv`, `os.putenv`, and `from os import environ/getenv`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb"}:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            names = {alias.name for alias in node.names} & {"environ", "getenv", "environb"}
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: from os import {n}" for n in names]
    return found


def test_core_reads_no_environment_variable() -> None:
    files = _python_files("core")
    assert files, "core/ not found"
    found = [hit for path in files for hit in _environment_reads(path)]
    assert found == []


def test_the_scan_sees_an_environment_read(tmp_path: Path) -> None:
    sample = ROOT / "core" / "__scan_sample__.py"
    try:
        sample.write_text("import os\nX = os.environ.get('A')\nfrom os import getenv\n")
        assert len(_environment_reads(sample)) == 2
    finally:
        sample.unlink()
