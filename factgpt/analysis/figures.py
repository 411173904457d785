"""Saving the analysis figures.

Answers of an untrained or badly trained model can hold characters that the
plotting font lacks; they are drawn as boxes, without a warning per glyph.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..plots import save_png


def save(fig, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
        save_png(fig, path)
    return path
