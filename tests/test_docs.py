"""The data dictionary is written once for analysts in the README; docs/data-dictionary.md is its copy."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.index("\n## ", start + len(heading))
    return text[start + len(heading) : end].strip()


def test_docs_copy_of_the_data_dictionary_equals_the_readme() -> None:
    readme = _section((ROOT / "README.md").read_text(), "## Data dictionary (for analysts)")
    docs = (
        (ROOT / "docs" / "data-dictionary.md")
        .read_text()
        .removeprefix("## Warehouse data dictionary")
        .strip()
    )
    assert docs == readme, "edit the README's data dictionary and copy it to docs/data-dictionary.md"
