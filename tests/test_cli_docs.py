"""Every command has help and is documented in the README (the sqlite-utils habit)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from newsbot.cli import main

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found.extend(_commands(command, f"{prefix}{name} "))
        else:
            found.append(prefix + name)
    return found


COMMANDS = _commands(main)


def test_the_command_list_is_not_empty() -> None:
    assert {"build", "check", "import", "publish", "run", "config show"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_readme(command: str) -> None:
    assert f"`newsbot {command}" in README
