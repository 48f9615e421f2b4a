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


def test_every_failure_in_the_runbook_names_a_test_that_exists() -> None:
    """The on-call table's "provoked by" column points at real test functions (renames break it)."""
    import re

    readme = (ROOT / "README.md").read_text()
    table = _section(readme, "## Runbook (for on-call): failures at a glance")
    refs = re.findall(r"(tests/[\w/]+\.py)(?:::(\w+))?", table)
    assert len(refs) >= 10
    for path, func in refs:
        source = (ROOT / path).read_text()
        assert not func or re.search(rf"^def {func}\(", source, flags=re.M), f"{path}::{func} is not a test"
