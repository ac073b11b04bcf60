"""Settings that explain themselves: where each value came from, and the one value
that must be right before anything is published.

* :func:`sources` names the origin of every effective value, in the order
  the settings are read: environment, secret file, config file, default.
* :func:`base_url_problem` says when ``site.base_url`` is still the loopback
  default while targets are configured: every feed item id and every post
  link is built from it, so changing it later changes every id in every
  reader and every link already posted.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsbot.settings import ENV_PREFIX, NESTED, Settings


@dataclass(frozen=True, slots=True)
class Source:
    """Where one effective value came from."""

    key: str
    value: Any
    origin: str
    """``default``, ``file PATH``, ``environment NAME`` or ``secret file PATH``."""


def sources(
    settings: Settings,
    *,
    config: Path | None,
    secrets_dir: Path | None,
    environ: Mapping[str, str] | None = None,
) -> list[Source]:
    """Every leaf of the effective settings (secrets masked) with its origin."""
    env = os.environ if environ is None else environ
    from_env = _env_keys(env)
    from_secrets = _secret_keys(secrets_dir)
    from_file = _file_keys(config)
    found = []
    for key, value in _leaves(settings.masked()):
        origin = "default"
        if (name := _covering(key, from_env)) is not None:
            origin = f"environment {name}"
        elif (path := _covering(key, from_secrets)) is not None:
            origin = f"secret file {path}"
        elif _covering(key, from_file) is not None:
            origin = f"file {config}"
        found.append(Source(key, value, origin))
    return found


def base_url_problem(settings: Settings) -> str | None:
    """Why ``site.base_url`` is not fit for publishing, when targets are configured."""
    if not any(target.enabled for target in settings.targets.values()):
        return None
    host = (settings.site.base_url.host or "").strip("[]")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host in ("localhost", "") or host.endswith(".localhost")
    if not loopback:
        return None
    return (
        f"site.base_url is {settings.site.base_url}, a loopback address, while targets are "
        "configured: every feed item id and every posted link is built from it, and "
        "changing it later changes every id in every reader. Set site.base_url (or "
        "NEWSBOT_SITE__BASE_URL) to the site's public address before publishing"
    )


def _leaves(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _covering(key: str, given: Mapping[str, str]) -> str | None:
    """The origin of ``key``: given for it, or for a group containing it (a JSON value)."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        found = given.get(".".join(parts[:end]))
        if found is not None:
            return found
    return None


def _env_keys(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        name[len(ENV_PREFIX) :].lower().replace(NESTED, "."): name
        for name in environ
        if name.upper().startswith(ENV_PREFIX) and name.upper() != "NEWSBOT_CONFIG"
    }


def _secret_keys(folder: Path | None) -> dict[str, str]:
    if folder is None or not folder.is_dir():
        return {}
    prefix = ENV_PREFIX.lower()
    return {
        path.name[len(prefix) :].lower().replace(NESTED, "."): str(path)
        for path in folder.iterdir()
        if path.name.lower().startswith(prefix) and path.is_file()
    }


def _file_keys(config: Path | None) -> dict[str, str]:
    if config is None:
        return {}
    with config.open("rb") as file:
        data = tomllib.load(file)
    return {key: str(config) for key, _ in _leaves(data)}
