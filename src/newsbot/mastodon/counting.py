"""Counting rules: a status's length as one server counts it, or as every candidate would.

A rule comes from a server profile (`newsbot.mastodon.profiles`), the limits the server
advertises and what its length errors taught: each way of counting the
profile admits is applied and the largest result is the status's length, so a
status that fits the rule fits whichever of them the server really uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsbot.mastodon.length import countable, graphemes
from newsbot.mastodon.profiles import Profile, Unit

_RUBY_STRIP = " \t\n\v\f\r\x00"


@dataclass(frozen=True, slots=True)
class CountingRule:
    """How to measure a status: units, how URLs count, whether the content warning counts.

    ``url_length`` is the advertised reservation per URL; it is used only if
    ``urls`` admits "reserved". ``limit`` is the largest length allowed.
    """

    units: tuple[Unit, ...] = ("graphemes",)
    urls: tuple[str, ...] = ("reserved",)
    url_length: int = 23
    spoiler_counts: bool = True
    limit: int = 500

    @classmethod
    def of(cls, profile: Profile, max_characters: int, url_length: int) -> CountingRule:
        return cls(
            units=profile.units,
            urls=profile.urls,
            url_length=url_length,
            spoiler_counts=profile.spoiler_counts,
            limit=max(1, max_characters - profile.limit_margin),
        )

    @property
    def urls_in_full(self) -> bool:
        return "full" in self.urls

    def count(self, text: str, spoiler_text: str) -> int:
        """The length of a status: the largest over every admitted way of counting."""

        spoiler = spoiler_text.strip(_RUBY_STRIP) if self.spoiler_counts else ""
        lengths = [
            measure(spoiler + countable(text, None if mode == "full" else self.url_length), unit)
            for mode in self.urls
            for unit in self.units
        ]
        return max(lengths)

    def describe(self) -> str:
        """How the rule counts, in words, for the dry run and the logs."""
        urls = " or ".join(
            "URLs counted in full" if mode == "full" else f"URLs counted as {self.url_length}"
            for mode in self.urls
        )
        units = " or ".join(unit.replace("_", " ") for unit in self.units)
        return f"{units}, {urls}"


def measure(text: str, unit: Unit) -> int:
    """The length of ``text`` in ``unit``."""
    if unit == "graphemes":
        return graphemes(text)
    if unit == "code_points":
        return len(text)
    return len(text.encode("utf-16-le")) // 2
