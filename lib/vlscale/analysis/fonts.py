"""The fonts the figures and the paper write captions with: Noto Sans faces for the world's 13 scripts.

They ship with the package (analysis/fonts/, SIL Open Font License; rebuilt by tools/build_fonts.py), so a
machine with no fonts installed still draws every caption. `use_fonts()` registers them with matplotlib;
FAMILIES is the fallback order (Latin, Greek and Cyrillic first, then each script's face).
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

FONT_DIR = Path(__file__).parent / "fonts"
FAMILIES = ("Noto Sans", "Noto Sans Arabic", "Noto Sans Bengali", "Noto Sans Devanagari", "Noto Sans Hebrew",
            "Noto Sans Telugu", "Noto Sans Thai", "Noto Sans CJK SC")


def font_files() -> list[Path]:
    files = sorted(FONT_DIR.glob("*.[ot]tf"))
    if not files:
        raise FileNotFoundError(f"{FONT_DIR} holds no fonts: run python tools/build_fonts.py")
    return files


@cache
def use_fonts() -> list[str]:
    """Register the faces with matplotlib; returns the family list to pass as `family=` (a fallback chain)."""
    from matplotlib import font_manager

    for path in font_files():
        font_manager.fontManager.addfont(str(path))
    return list(FAMILIES)
