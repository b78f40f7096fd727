"""The README's settings table is generated from the settings classes and must not drift."""

from pathlib import Path

from artstore.cli.settings_doc import BEGIN, END, current_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_table_is_current() -> None:
    text = README.read_text()
    section = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    assert section.strip() == current_table().strip(), (
        "README settings table is stale: run `artstore settings-table --write`"
    )
