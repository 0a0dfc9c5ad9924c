"""The paper stage's parts: the fonts cover every script the world writes, the LaTeX tables parse into the
typesetter's rows, and no figure or table can be left out of the paper unnoticed."""
import numpy as np
import pytest
from fontTools.ttLib import TTFont

from vlscale.analysis.fonts import FAMILIES, font_files
from vlscale.analysis.latex import ci, tabular, tex
from vlscale.data.ids import make_ids
from vlscale.paper.build import FIGURES, TABLES, figure_list, fmt, parse_latex_table, table_list
from vlscale.world.captions import captions


def test_the_shipped_faces_draw_every_character_of_every_caption_the_world_writes(world):
    cmaps = {}
    for path in font_files():
        cmaps[path.stem] = set(TTFont(path).getBestCmap())
    assert len(cmaps) == len(FAMILIES) + 1  # Noto Sans comes in regular and bold
    covered = set().union(*cmaps.values())
    text = set()
    for s, lang in enumerate(world.strata):
        text |= set("".join(captions(world, make_ids(s, np.arange(300)))))
    for concept in world.concepts:
        text |= set("".join(concept["names"].values()))
    for names in world.country_names:
        text |= set("".join(names.values()))
    missing = sorted(c for c in text if not c.isspace() and ord(c) not in covered and ord(c) not in (0x200C, 0x200D))
    assert not missing, f"characters no shipped face has: {missing[:20]} (run tools/build_fonts.py)"


def test_a_latex_table_parses_into_rows_with_its_sections_and_caption():
    latex = tabular(["Task", "1%", "10%"], ["Zero-shot", ["ImageNet_1k", ci(12.5, 11.0, 14.0), ci(-1.5, -2.0, -1.0)],
                                         [tex("A & B"), "--", "3.0$^\\dagger$"]],
                  "Error (\\%) with its 95\\% interval.", "tab:x", "lrr")
    t = parse_latex_table(latex, "x.tex")
    assert t["header"] == ["Task", "1%", "10%"]
    assert t["rows"][0] == {"section": "Zero-shot"}
    assert t["rows"][1] == ["ImageNet_1k", "12.5 [11.0, 14.0]", "\u22121.5 [\u22122.0, \u22121.0]"]
    assert t["rows"][2] == ["A & B", "\u2013", "3.0\u2020"]
    assert t["caption"] == "Error (%) with its 95% interval."
    with pytest.raises(ValueError, match="cannot render"):
        parse_latex_table(latex.replace("Task", "$\\beta$"), "x.tex")


def test_a_figure_or_table_the_paper_does_not_place_fails_the_build(tmp_path):
    from PIL import Image

    (tmp_path / "paper/figures/world").mkdir(parents=True)
    Image.new("RGB", (40, 20)).save(tmp_path / "paper/figures/world/long_tail.png")
    assert [f["key"] for f in figure_list(tmp_path)] == ["world/long_tail"]
    Image.new("RGB", (40, 20)).save(tmp_path / "paper/figures/world/new_plot.png")
    with pytest.raises(ValueError, match="new_plot"):
        figure_list(tmp_path)
    (tmp_path / "paper/tables").mkdir(parents=True)
    (tmp_path / "paper/tables/table99.tex").write_text(tabular(["a"], [["1"]], "c", "l", "l"))
    with pytest.raises(ValueError, match="table99"):
        table_list(tmp_path)
    assert set(TABLES) >= {"table1", "table13", "table14", "attention_focus"}
    assert all(caption and not caption.endswith(" ") for caption, _ in FIGURES.values())


def test_numbers_print_with_a_true_minus_sign_and_missing_values_as_a_dash():
    assert fmt(-1.25, 1) == "\u22121.2" and fmt(0.5, 2, sign=True) == "+0.50"
    assert fmt(float("nan")) == "--" and fmt(None) == "--"
