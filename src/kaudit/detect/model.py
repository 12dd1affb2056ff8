"""The rule records. A rule is data: one frozen `Rule` per YAML document.

Kinds (issue 6): `match` (streaming: search + optional SQL condition, every batch), `query`
(scheduled SLS query with an SLS trigger condition), and the stateful kinds compiled to SQL:
`threshold`, `new_term`, `cardinality`, `spike`, `sequence`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kaudit.errors import Location
from kaudit.errors import RuleError as RuleError  # re-exported: rules raise it

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
# SLS v2 severity numbers (sls-query §3.1): 10 critical, 8 high, 6 medium, 4 low, 2 report.
SLS_SEVERITY: dict[str, int] = {"critical": 10, "high": 8, "medium": 6, "low": 4, "info": 2}


@dataclass(frozen=True, slots=True)
class Text:
    """A text in Chinese and English (the built-in rules carry both)."""

    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True, slots=True)
class DisplayField:
    """One alert display column: an SLS SQL expression and its alias (`事件ID`)."""

    alias: str
    expr: str


@dataclass(frozen=True, slots=True)
class Dedup:
    """Alerts with the same rule and key values are one alert; notify again after `realert_s`."""

    keys: tuple[str, ...] = ()  # SLS SQL expressions; () = one alert per triggering event
    realert_s: int = 3600


@dataclass(frozen=True, slots=True)
class Exceptions:
    """Allow-lists: an event matching any entry never triggers the rule."""

    users: tuple[str, ...] = ()  # exact usernames; a trailing `*` is a prefix
    groups: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    images: tuple[str, ...] = ()  # image repositories (before `:`/`@`); every container listed
    cidrs: tuple[str, ...] = ()  # first source IP inside one of them
    user_agents: tuple[str, ...] = ()  # prefixes

    def empty(self) -> bool:
        return not (
            self.users
            or self.groups
            or self.namespaces
            or self.images
            or self.cidrs
            or self.user_agents
        )


@dataclass(frozen=True, slots=True)
class RuleTest:
    """An inline test: these events, and whether the rule fires on them (and how often)."""

    name: str
    events: tuple[dict[str, Any], ...]
    expect: bool
    count: int | None = None  # alerts expected when given
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """Streaming: an SLS search, optionally narrowed by an SLS SQL boolean condition."""

    search: str
    where: str | None = None


@dataclass(frozen=True, slots=True)
class Scheduled:
    """An SLS query every `every_s` over the last `window_s`, firing per row that passes
    `trigger` (SLS condition language; None = any row)."""

    query: str
    every_s: int
    window_s: int
    trigger: str | None = None
    group_by: tuple[str, ...] = ()  # result columns forming the alert key


@dataclass(frozen=True, slots=True)
class Threshold:
    """At least `count` matching events per `by` key within the window."""

    search: str
    by: tuple[str, ...]
    count: int
    every_s: int
    window_s: int
    where: str | None = None


@dataclass(frozen=True, slots=True)
class Cardinality:
    """At least `count` distinct values of `distinct` per `by` key within the window."""

    search: str
    by: tuple[str, ...]
    distinct: str
    count: int
    every_s: int
    window_s: int
    where: str | None = None


@dataclass(frozen=True, slots=True)
class NewTerm:
    """A value of `terms` for a known `by` key: first seen in the window, not in the `history_s`
    before it, and the key itself matched at least `learning_s` before the value appeared.

    The second condition is what Elastic's new_terms history window means for an identity: a
    key with no history has nothing to compare with, so its first values are its baseline, not
    news (a brand-new service account's first IP is not "a new IP for it")."""

    search: str
    by: tuple[str, ...]
    terms: tuple[str, ...]
    history_s: int
    every_s: int
    window_s: int
    where: str | None = None
    learning_s: int = 86400


@dataclass(frozen=True, slots=True)
class Spike:
    """Per key, the window's count is at least `factor` times the reference rate, and at least
    `min_count`."""

    search: str
    by: tuple[str, ...]
    factor: float
    min_count: int
    reference_s: int
    every_s: int
    window_s: int
    where: str | None = None


@dataclass(frozen=True, slots=True)
class Sequence:
    """An event matching `first`, then one matching `then` with the same key within
    `within_s`. `first` is looked for up to `lookback_s` back (stored history)."""

    first: Match
    first_key: str  # SLS SQL expression over the `first` event
    then: Match
    then_key: str
    within_s: int
    lookback_s: int
    every_s: int
    window_s: int


Kind = Match | Scheduled | Threshold | Cardinality | NewTerm | Spike | Sequence
KIND_NAMES: dict[type, str] = {
    Match: "match",
    Scheduled: "query",
    Threshold: "threshold",
    Cardinality: "cardinality",
    NewTerm: "new_term",
    Spike: "spike",
    Sequence: "sequence",
}


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: Text
    description: Text
    severity: Severity
    mitre: tuple[str, ...]
    kind: Kind
    fields: tuple[DisplayField, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    enabled: bool = True
    dedup: Dedup = field(default_factory=Dedup)
    exceptions: Exceptions = field(default_factory=Exceptions)
    tests: tuple[RuleTest, ...] = ()
    falco: tuple[str, ...] = ()  # Falco k8saudit rule names of the same meaning
    needs: str | None = None  # policy.needs detection id whose audit level this rule needs
    min_level: str = "Metadata"  # audit level the rule's input needs (Request: bodies)
    location: Location | None = None

    @property
    def kind_name(self) -> str:
        return KIND_NAMES[type(self.kind)]

    @property
    def streaming(self) -> bool:
        return isinstance(self.kind, Match)

    @property
    def every_s(self) -> int:
        return 0 if isinstance(self.kind, Match) else self.kind.every_s

    @property
    def window_s(self) -> int:
        return 0 if isinstance(self.kind, Match) else self.kind.window_s

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)
