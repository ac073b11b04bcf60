"""A target's rules for its server: the detected profile, the learned counting, the limits.

Built once per pass from what the server says (`MastodonClient.server_software`,
its instance limits), the target's ``profile`` setting and what earlier length
errors taught (`newsbot.state.learning`). The dry run builds the same rules
offline from a named profile or the last detected one.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsbot.mastodon.counting import CountingRule
from newsbot.mastodon.documents import Limits, Software
from newsbot.mastodon.profiles import UNKNOWN, Profile, detect, profile_named
from newsbot.state.learning import Knowledge, Learned


@dataclass(frozen=True, slots=True)
class ServerRules:
    """The profile in force for a target, and the counting rule statuses are composed with."""

    profile: Profile
    limits: Limits
    learned: Learned | None = None

    @property
    def rule(self) -> CountingRule:
        profile = self.profile
        margin = profile.limit_margin
        if self.learned is not None:
            profile = profile.with_learned(None, self.learned.urls_in_full)
            for unit in self.learned.units:
                profile = profile.with_learned(unit, False)
            margin = max(margin, self.learned.margin)
        rule = CountingRule.of(
            profile, self.limits.max_characters, self.limits.characters_reserved_per_url
        )
        return CountingRule(
            units=rule.units,
            urls=rule.urls,
            url_length=rule.url_length,
            spoiler_counts=rule.spoiler_counts or self.learned is not None,
            limit=max(1, self.limits.max_characters - margin),
        )

    def after_length_error(self) -> ServerRules:
        """These rules once a length error showed the server counts more than they say."""
        return ServerRules(self.profile, self.limits, Learned())

    def describe(self) -> str:
        learned = ", learned from a length error" if self.learned is not None else ""
        return f"{self.profile.name} ({self.rule.describe()}, limit {self.rule.limit}{learned})"


def choose_profile(setting: str, software: Software | None, knowledge: Knowledge) -> Profile:
    """The profile a target uses: its setting, else detection, else the last detected one."""
    if setting != "auto":
        return profile_named(setting)
    if software is not None:
        return detect(software.name, software.instance_version)
    if knowledge.software:
        try:
            return profile_named(knowledge.software)
        except KeyError:
            return UNKNOWN
    return UNKNOWN
