"""Rewrite the README's configuration tables from the declared settings.

    python -m tools.settings_tables          # after adding or changing a setting

The tables sit between the two marker comments; tests/test_readme.py fails while they
differ from `wyoming_verba.settings.options_markdown()`."""

from __future__ import annotations

import sys
from pathlib import Path

from wyoming_verba.settings import options_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- settings:begin -->\n", "<!-- settings:end -->\n"


def tables_in(text: str) -> str:
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)]


def main() -> int:
    text = README.read_text(encoding="utf-8")
    new = text.replace(BEGIN + tables_in(text) + END, BEGIN + options_markdown() + END)
    if new != text:
        README.write_text(new, encoding="utf-8")
        print(f"updated {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
