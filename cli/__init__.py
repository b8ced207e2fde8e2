"""The `animebot` command line: thin argparse wrappers over the engine and the registry.

`cli.main` builds the parser from the modules in `cli.commands` (each exposes `register`);
the work lives in `core` (conversion), `core.registry` (styles) and, for importing published
AnimeGANv2 checkpoints, `cli.model_import` / `cli.download` (torch only inside `models add`).
"""
