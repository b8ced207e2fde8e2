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


FRONT_ENDS = ("bot", "web")
# What only the job runner and the service may touch: the database, the engine (and its model
# registry), the durable job table, and the usage bookkeeping.
FORBIDDEN_ATTRIBUTES = frozenset(
    {"db", "engine", "registry", "jobs", "record_failure", "record_refusal", "check_open"}
)


def _front_end_reaches(path: Path) -> list[str]:
    """Imports of `storage`, and `<something>.db/.engine/.registry/.jobs/.record_*` used on
    the runtime or the service (the front end's only handles on the rest of the program)."""
    found = []
    where = path.relative_to(ROOT)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [
                f"{where}:{node.lineno}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] == "storage"
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "storage":
            found.append(f"{where}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if name in {"runtime", "service", "runner", "d", "deps"}:
                found.append(f"{where}:{node.lineno}: {name}.{node.attr}")
    return found


def test_front_ends_reach_only_the_runner_and_the_service() -> None:
    """bot/ and web/ build jobs and render answers: no storage, no engine or registry, no
    usage bookkeeping of their own (issue 12)."""
    files = [p for package in FRONT_ENDS for p in _python_files(package)]
    assert len(files) > 20, "front-end packages not found"
    found = [hit for path in files for hit in _front_end_reaches(path)]
    assert found == []


def test_the_front_end_scan_sees_each_kind_of_reach() -> None:
    sample = ROOT / "web" / "__scan_sample__.py"
    try:
        sample.write_text(
            "import storage.db\n"
            "from storage import Database\n"
            "def f(runtime, service):\n"
            "    runtime.db.usage\n"
            "    runtime.engine.registry\n"
            "    service.jobs.finish\n"
            "    service.record_failure('web', 1, 'x')\n"
        )
        hits = _front_end_reaches(sample)
        assert len(hits) == 6, hits
    finally:
        sample.unlink()
