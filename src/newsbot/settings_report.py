"""Settings that explain themselves: where each value came from, the key a typo meant,
and the one value that must be right before anything is published.

* :func:`sources` names the origin of every effective value, in the order
  the settings are read: environment, secret file, config file, default.
* :func:`nearest_key` turns pydantic's "Extra inputs are not permitted" for
  ``[target.main]`` into a suggestion of ``targets``.
* :func:`base_url_problem` says when ``site.base_url`` is still the loopback
  default while targets are configured: every feed item id and every post
  link is built from it, so changing it later changes every id in every
  reader and every link already posted.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

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


def nearest_key(loc: Sequence[str | int]) -> str | None:
    """The known key closest to the unknown last part of ``loc``, if one is close enough."""
    fields = _fields_at(loc[:-1])
    if not fields or not isinstance(loc[-1], str):
        return None
    wanted = loc[-1].lower()
    close = difflib.get_close_matches(wanted, fields, n=1, cutoff=0.6)
    if not close:
        prefixed = [f for f in fields if f.startswith(wanted) or wanted.startswith(f)]
        close = prefixed[:1]
    return ".".join([*(str(part) for part in loc[:-1]), close[0]]) if close else None


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


def _fields_at(loc: Sequence[str | int]) -> list[str]:
    """The field names of the settings group at ``loc`` (empty when it is not a group)."""
    model: Any = Settings
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part))
            if field is None:
                return []
            model = field.annotation
        elif typing.get_origin(model) is dict:
            model = typing.get_args(model)[1]  # a target's name: its settings come next
        else:
            return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []
