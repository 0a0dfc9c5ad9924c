"""Rebuild lib/vlscale/analysis/fonts/: Noto Sans faces cut down to the characters the world can write.

The attention figure and the paper show captions in all 36 languages (13 scripts). A fresh machine has no
fonts for most of them, and the figures and the PDF must build there with nothing but pip. So the project
carries, under the SIL Open Font License, the Noto Sans faces it needs, subset with fontTools to every
character of the world's vocabulary (lib/vlscale/world/data/*.json) plus printable ASCII, Latin-1 and
general punctuation: about 2 MB instead of ~150 MB. Layout features are kept, so the Indic scripts shape
(conjuncts, reordered vowel signs) and CJK keeps its locale forms.

Sources: Debian's fonts-noto-core and fonts-noto-cjk (`apt-get install fonts-noto-core fonts-noto-cjk`).
Run from the repository root after changing the world's vocabulary: python tools/build_fonts.py
"""
from __future__ import annotations

import argparse
import glob
import json
import unicodedata
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "lib/vlscale/analysis/fonts"
NOTO = Path("/usr/share/fonts/truetype/noto")
CJK = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
# face file stem -> the family name figures and the paper ask for (fonts.FAMILIES)
FACES = ["NotoSans-Regular", "NotoSans-Bold", "NotoSansArabic-Regular", "NotoSansBengali-Regular",
         "NotoSansDevanagari-Regular", "NotoSansHebrew-Regular", "NotoSansTelugu-Regular", "NotoSansThai-Regular"]
CJK_FACE = "Noto Sans CJK SC"  # its glyph set covers Han, kana and Hangul; `locl` keeps Japanese/Korean forms


def world_characters() -> set[str]:
    """Every character of the world's vocabulary that a caption can hold (letters, marks, digits, spaces)."""
    chars: set[str] = set()

    def walk(o):
        if isinstance(o, str):
            chars.update(o)
        elif isinstance(o, dict):
            for k, v in o.items():
                walk(k)
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    for f in sorted(glob.glob(str(ROOT / "lib/vlscale/world/data/*.json"))):
        walk(json.loads(Path(f).read_text()))
    # emoji (symbols "So") are the CLDR annotations' keys, not words: no caption writes them
    return {c for c in chars if unicodedata.category(c)[0] in "LMNPZ" or unicodedata.category(c) in ("Sc", "Sk", "Sm")
            or c in "\u200c\u200d"}


def base_characters() -> set[str]:
    return {chr(c) for c in [*range(0x20, 0x7F), *range(0xA0, 0x180), *range(0x2000, 0x2070), 0x2212, 0x2248,
                             0x2264, 0x2265, 0x00D7, 0x2192, 0x2190, 0x2191, 0x2193, 0x25CF, 0x2013, 0x2014]}


def licence_text(copyright_file: Path = Path("/usr/share/doc/fonts-noto-core/copyright")) -> str:
    """The SIL Open Font License 1.1, from the Debian package's copyright file (its stand-alone paragraph)."""
    lines, out, inside = copyright_file.read_text().splitlines(), [], False
    for line in lines:
        if line == "License: OFL-1.1":
            inside, out = True, []  # the last such paragraph holds the text
            continue
        if inside:
            if line and not line.startswith(" "):
                inside = False
                continue
            out.append("" if line.strip() == "." else line[1:])
    return "\n".join(out).strip() + "\n"


def _subset(font: TTFont, text: str, out: Path):
    options = subset.Options()
    options.layout_features = ["*"]  # every OpenType feature: shaping needs them
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.drop_tables += ["DSIG"]
    sub = subset.Subsetter(options)
    sub.populate(text=text)
    sub.subset(font)
    font.save(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    text = "".join(sorted(world_characters() | base_characters()))
    for stem in FACES:
        src = NOTO / f"{stem}.ttf"
        font = TTFont(src)
        covered = {chr(c) for c in font.getBestCmap()}
        _subset(font, "".join(c for c in text if c in covered), args.out / f"{stem}.ttf")
    collection = TTCollection(CJK)
    face = next(f for f in collection.fonts if f["name"].getDebugName(1) == CJK_FACE)
    covered = {chr(c) for c in face.getBestCmap()}
    _subset(face, "".join(c for c in text if c in covered), args.out / "NotoSansCJKsc-Regular.otf")
    (args.out / "LICENSE-OFL-1.1.txt").write_text(
        "Noto Sans fonts: Copyright 2010-2020 Google Inc. and Google LLC (https://github.com/notofonts).\n"
        "Subset by tools/build_fonts.py from Debian's fonts-noto-core and fonts-noto-cjk.\n\n" + licence_text())
    for path in sorted(args.out.glob("*.[ot]tf")):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
