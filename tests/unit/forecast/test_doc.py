"""A dataset's section of the forecasts page is replaced in place; the rest is kept."""

from marketpulse.forecast.doc import write_section


def test_a_section_is_added_then_replaced_and_the_others_kept(tmp_path):
    page = tmp_path / "forecasts.md"
    page.write_text("# Forecasts\n\nProse a person wrote.\n", encoding="utf-8")
    write_section(page, "lean", "## lean\n\nfirst")
    write_section(page, "kaggle", "## kaggle\n\nfigures")
    write_section(page, "lean", "## lean\n\nsecond")
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Forecasts\n\nProse a person wrote.\n")
    assert "first" not in text
    assert text.count("<!-- forecast evaluate: lean -->") == 1
    assert text.index("second") < text.index("## kaggle")  # replaced where it was
    assert "figures" in text


def test_a_new_page_gets_a_title(tmp_path):
    page = tmp_path / "new.md"
    write_section(page, "sim", "## sim")
    assert page.read_text(encoding="utf-8").startswith("# Forecasts\n")
