"""``newsbot config show``: the effective settings, and where each came from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from newsbot.cli.common import Context


@click.group()
def config() -> None:
    """Inspect the settings."""


@config.command("show")
@click.option(
    "--sources",
    is_flag=True,
    help="One line per value: where it came from (default, file, environment, secret file).",
)
@click.pass_obj
def config_show(obj: Context, sources: bool) -> None:
    """Print the effective settings (secrets masked) as JSON, or each with its source."""
    if not sources:
        click.echo(json.dumps(obj.settings.masked(), indent=2, ensure_ascii=False))
        return
    from newsbot.settings import DEFAULT_SECRETS_DIR
    from newsbot.settings_report import sources as origins

    config_file = obj.config
    if config_file is None and os.environ.get("NEWSBOT_CONFIG"):
        config_file = Path(os.environ["NEWSBOT_CONFIG"])
    for found in origins(obj.settings, config=config_file, secrets_dir=DEFAULT_SECRETS_DIR):
        value = json.dumps(found.value, ensure_ascii=False)
        click.echo(f"{found.key} = {value}  # {found.origin}")
