"""The README's syscall table is derived from syscalls/table.py and current."""

from pathlib import Path

from syscalls import report

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_table_is_current():
    text = README.read_text()
    assert report.readme_section() in text, \
        "README.md is stale: run `python -m syscalls.report --update-readme`"


def test_readme_shows_the_two_commands():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
