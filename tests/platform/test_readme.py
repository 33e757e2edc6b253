"""The README stays true: its two commands exist, its demo accounts are the conventions' ones."""

from __future__ import annotations

import re

from deploy.local import demo_accounts
from deploy.platform import ROOT


def test_readme_commands_are_make_targets() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z]+):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))
    assert {"up", "down", "test", "check"} <= targets
    assert "make up      #" in readme and "make test    #" in readme
    for command in re.findall(r"`make (\w+)", readme):
        assert command in targets, command


def test_readme_demo_accounts_match_the_conventions() -> None:
    readme = demo_accounts(ROOT / "README.md")
    assert readme, "README.md has no demo accounts table"
    assert readme == demo_accounts(ROOT / "docs" / "conventions.md")
