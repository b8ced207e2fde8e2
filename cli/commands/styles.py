"""`animebot styles` (and `animebot models list`): what is installed, and what each serves."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.common import registry_from

if TYPE_CHECKING:
    from cli.common import Subparsers
    from core.registry import StyleSpec

COLUMNS = ("NAME", "KIND", "TITLE", "FILE", "PARAMS", "SIZE", "PRECISION", "VERSION", "SOURCE")


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "styles",
        help="list the installed styles",
        description="List the installed styles: scene styles convert whole photos, face styles "
        "paint the faces in them.",
    )
    add_arguments(p)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cli.common import user_models_dir

    registry = registry_from(args)
    user_root = user_models_dir().resolve()
    rows = [describe(spec, user_root) for spec in registry.all()]
    rows.sort(key=lambda r: (r["kind"] != "scene", r["name"]))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        where = ", ".join(str(d) for d in registry.dirs)
        print(f"no styles installed (looked in {where}); add one with 'animebot models pull'")
        return 0
    print(table(rows))
    return 0


def describe(spec: StyleSpec, user_root: Path) -> dict[str, Any]:
    folder = spec.folder.resolve()
    skipped = spec.meta.get("int8_skipped")
    return {
        "name": spec.name,
        "kind": spec.kind,
        "title": spec.title,
        "file": spec.model_file.name,
        "parameters": spec.parameters,
        "size_kb": round(spec.size_bytes / 1024),
        "precision": spec.precision,
        "gate_note": spec.gate_note or (f"INT8 skipped: {skipped}" if skipped else None),
        "version": spec.version,
        "architecture": spec.meta.get("architecture"),
        "source": _source(folder, user_root),
        "folder": str(spec.folder),
    }


def _source(folder: Path, user_root: Path) -> str:
    from models import WEIGHTS_DIR

    if folder.is_relative_to(user_root):
        return "user"
    return "built-in" if folder.is_relative_to(WEIGHTS_DIR.resolve()) else "other"


def table(rows: list[dict[str, Any]]) -> str:
    """Aligned columns; precision notes (why fp32 is served) go below as footnotes."""
    body: list[tuple[str, ...]] = []
    notes: list[str] = []
    for r in rows:
        precision = r["precision"]
        if r["gate_note"]:
            notes.append(f"* {r['name']}: {r['gate_note']}")
            precision += "*"
        body.append(
            (
                r["name"],
                r["kind"],
                r["title"],
                r["file"],
                f"{r['parameters']:,}",
                f"{r['size_kb']:,} KB",
                precision,
                r["version"],
                r["source"],
            )
        )
    widths = [max(len(row[i]) for row in [COLUMNS, *body]) for i in range(len(COLUMNS))]
    out = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [COLUMNS, *body]
    ]
    return "\n".join(out + notes)
