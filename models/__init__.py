"""Network definitions, training and export. Importing this package never imports torch;
import the submodules (`models.student`, `models.animeganv2`, `models.train`) for that."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
