"""`animebot models add|pull|list|remove`: install published AnimeGANv2 checkpoints as styles.

Thin wrappers: `cli.download` fetches and verifies, `cli.model_import` checks, exports and
installs (torch is imported there, only when a model is added), the registry serves the result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from cli.commands import styles
from cli.errors import CliError
from models.published import PUBLISHED, published

if TYPE_CHECKING:
    from cli.common import Subparsers
    from cli.model_import import Imported, ImportOptions


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "models",
        help="add, download, list or remove styles",
        description="Manage imported styles (published AnimeGANv2 PyTorch checkpoints). They are "
        "installed in the user models directory ($ANIMEBOT_MODELS_DIR, default data/models).",
    )
    actions = p.add_subparsers(dest="models_action", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add",
        help="import an AnimeGANv2 checkpoint (.pt) as a style",
        description="Verify an AnimeGANv2 generator checkpoint (plain tensors, published keys "
        "and shapes, published SHA-1 for published names), export it to ONNX (fp32 + INT8 when "
        "it passes the 35 dB gate) and install it. Needs the training extras (torch).",
    )
    add.add_argument("checkpoint", type=Path, metavar="FILE.pt")
    add.add_argument("--name", required=True, help="style name (lower case, digits, '_')")
    _import_arguments(add)
    add.set_defaults(handler=run_add)

    known = ", ".join(w.name for w in PUBLISHED)
    pull = actions.add_parser(
        "pull",
        help="download a published checkpoint and import it",
        description=f"Download a published AnimeGANv2 checkpoint ({known}), verify its SHA-1 "
        "and import it as with 'models add'. An interrupted download resumes when run again. "
        "Other sources: --url URL --sha1 HEX --name NAME.",
    )
    pull.add_argument("published", nargs="?", metavar="NAME", help=f"one of: {known}")
    pull.add_argument("--url", help="download from this URL instead (needs --sha1 and --name)")
    pull.add_argument("--sha1", help="expected SHA-1 of the file (git blob or plain sha1sum)")
    pull.add_argument("--name", help="style name to install as (default: NAME)")
    pull.add_argument(
        "--mirror", metavar="BASE_URL", help="fetch the same path from this host instead"
    )
    pull.add_argument(
        "--dest", type=Path, metavar="DIR", help="download folder (default: <data dir>/downloads)"
    )
    pull.add_argument(
        "--retries", type=int, default=3, help="resume attempts after a dropped connection"
    )
    _import_arguments(pull)
    pull.set_defaults(handler=run_pull)

    listing = actions.add_parser("list", help="list the installed styles (same as 'styles')")
    styles.add_arguments(listing)

    remove = actions.add_parser("remove", help="delete an imported style (not a built-in one)")
    remove.add_argument("name")
    remove.set_defaults(handler=run_remove)


def _import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--title", help="display title (default: from the name)")
    p.add_argument(
        "--face",
        action="store_true",
        help="a face model (face2paint); automatic for face_paint* and celeba* names",
    )
    p.add_argument(
        "--calibration",
        type=Path,
        metavar="DIR",
        help="photos to calibrate INT8 on and to gate it with (default: ../shared/data/photos "
        "when present; without photos the style serves fp32)",
    )
    p.add_argument("--force", action="store_true", help="replace an imported style of that name")


def _options(args: argparse.Namespace, name: str, url: str | None = None) -> ImportOptions:
    from cli.model_import import ImportOptions

    return ImportOptions(
        name=name,
        title=args.title,
        face=args.face,
        calibration=args.calibration,
        force=args.force,
        url=url,
    )


def _builtin() -> set[str]:
    import models
    from cli.model_import import builtin_names

    return builtin_names(models.WEIGHTS_DIR)


def _import(checkpoint: Path, options: ImportOptions, *, verbose: bool) -> int:
    from cli.model_import import import_checkpoint

    result = import_checkpoint(
        checkpoint,
        options,
        builtin=_builtin(),
        on_step=lambda text: print(text, flush=True),
        on_warning=lambda text: print(f"warning: {text}", file=sys.stderr, flush=True),
        quiet=not verbose,
    )
    _report(result)
    return 0


def _report(result: Imported) -> None:
    spec = result.spec
    if result.provenance.verified:
        print(f"verified: {result.provenance.note}")
    if result.int8_skipped:
        precision = f"fp32 (INT8 skipped: {result.int8_skipped})"
    elif spec.precision == "int8":
        precision = f"int8 ({result.gate_psnr:.1f} dB vs fp32)"
    else:
        precision = f"fp32 ({spec.gate_note})"
    print(
        f"installed {spec.kind} style {spec.name!r} ({spec.title}): {spec.parameters:,} "
        f"parameters, {spec.size_bytes / 1024:,.0f} KB, serving {precision}, in {spec.folder}"
    )


def run_add(args: argparse.Namespace) -> int:
    return _import(args.checkpoint, _options(args, args.name), verbose=args.verbose)


def run_pull(args: argparse.Namespace) -> int:
    from cli.common import data_dir
    from cli.download import download, mirror_url

    if args.url:
        if args.published or not args.sha1 or not args.name:
            raise CliError("--url needs --sha1 and --name, and no published NAME")
        if args.mirror:
            raise CliError("--mirror applies to published names, not to --url")
        url, sha1, name = args.url, args.sha1, args.name
    else:
        if not args.published:
            raise CliError("name a published model, or give --url URL --sha1 HEX --name NAME")
        source = published(args.published)
        if source is None:
            known = ", ".join(w.name for w in PUBLISHED)
            raise CliError(
                f"{args.published!r} is not a published model (known: {known}); for other "
                "files use --url URL --sha1 HEX --name NAME"
            )
        if args.sha1:
            raise CliError("--sha1 is only for --url: published files are checked against theirs")
        url = mirror_url(args.mirror, source.url) if args.mirror else source.url
        sha1, name = source.git_blob_sha1, args.name or source.name
    if args.retries < 0:
        raise CliError("--retries must be 0 or more")
    dest_dir: Path = args.dest or data_dir() / "downloads"
    print(f"downloading {url}", flush=True)
    got = download(url, dest_dir / f"{name}.pt", sha1=sha1, retries=args.retries)
    if got.reused:
        print(f"already downloaded: {got.path} (SHA-1 verified)")
    else:
        resumed = f", resumed at {got.resumed_from:,} bytes" if got.resumed_from else ""
        print(f"downloaded {got.path} ({got.digests.size:,} bytes{resumed}; SHA-1 verified)")
    return _import(got.path, _options(args, name, url=url), verbose=args.verbose)


def run_remove(args: argparse.Namespace) -> int:
    from cli.model_import import remove_style

    folder = remove_style(args.name, builtin=_builtin())
    print(f"removed {args.name} ({folder})")
    return 0
