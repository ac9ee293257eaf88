"""The README stays true: every flag documented, and CI runs its test command."""

import re
from pathlib import Path

from tools.settings_tables import tables_in
from wyoming_verba.settings import build_parser, options_markdown

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_flag_is_documented():
    flags = [a.option_strings[-1] for a in build_parser()._actions if a.option_strings]
    missing = [f for f in flags if f not in ("-h", "--help") and f"`{f}" not in README]
    assert missing == []


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```sh\n(.+?)\n```", README)
    test_command = next(c for c in commands if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()


def test_every_addon_option_is_documented():
    import yaml

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    missing = [name for name in config["schema"] if f"| `{name}` |" not in README]
    assert missing == []


def test_the_configuration_tables_are_the_declared_settings():
    """The README's tables are generated from wyoming_verba/settings.py: after changing a
    setting, run `python -m tools.settings_tables`."""
    assert tables_in(README) == options_markdown()
