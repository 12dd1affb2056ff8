"""YAML rule files -> `Rule` records, checked against the rule schema.

Every error names `file:line:col` of the node at fault (PyYAML node marks). `load_paths` can
collect every error of many files at once (for `kaudit rules lint`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from kaudit.detect.model import (
    SEVERITIES,
    Cardinality,
    Dedup,
    DisplayField,
    Exceptions,
    Kind,
    Match,
    NewTerm,
    Rule,
    RuleError,
    RuleTest,
    Scheduled,
    Sequence,
    Severity,
    Spike,
    Text,
    Threshold,
)
from kaudit.errors import Location
from kaudit.units import parse_duration

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_MITRE = re.compile(r"^T\d{4}(\.\d{3})?$")
_LEVELS = ("None", "Metadata", "Request", "RequestResponse")

TOP_KEYS = {
    "id", "title", "description", "severity", "mitre", "labels", "enabled", "fields",
    "dedup", "exceptions", "tests", "falco", "needs", "min_level",
    "match", "query", "threshold", "new_term", "cardinality", "spike", "sequence",
}  # fmt: skip
KINDS = ("match", "query", "threshold", "new_term", "cardinality", "spike", "sequence")


@dataclass(frozen=True, slots=True)
class N:
    """A YAML node with its file, for located errors."""

    node: yaml.Node
    source: str

    @property
    def loc(self) -> Location:
        m = self.node.start_mark
        return Location(self.source, m.line + 1, m.column + 1)

    def fail(self, msg: str) -> RuleError:
        return RuleError(msg, self.loc)

    def mapping(self, what: str, keys: Iterable[str] | None = None) -> dict[str, N]:
        if not isinstance(self.node, yaml.MappingNode):
            raise self.fail(f"{what}: expected a mapping")
        out: dict[str, N] = {}
        allowed = set(keys) if keys is not None else None
        for k, v in self.node.value:
            key = N(k, self.source)
            if not isinstance(k, yaml.ScalarNode):
                raise key.fail(f"{what}: keys must be strings")
            if allowed is not None and k.value not in allowed:
                raise key.fail(
                    f"{what}: unknown key {k.value!r} (allowed: {', '.join(sorted(allowed))})"
                )
            if k.value in out:
                raise key.fail(f"{what}: duplicate key {k.value!r}")
            out[k.value] = N(v, self.source)
        return out

    def seq(self, what: str) -> list[N]:
        if isinstance(self.node, yaml.ScalarNode) and self.node.tag.endswith(":str"):
            return [self]  # a single value stands for a one-item list
        if not isinstance(self.node, yaml.SequenceNode):
            raise self.fail(f"{what}: expected a list")
        return [N(v, self.source) for v in self.node.value]

    def text(self, what: str) -> str:
        if not isinstance(self.node, yaml.ScalarNode) or self.node.tag.endswith(":null"):
            raise self.fail(f"{what}: expected a string")
        return str(self.node.value)

    def strs(self, what: str) -> tuple[str, ...]:
        return tuple(n.text(what) for n in self.seq(what))

    def integer(self, what: str, minimum: int = 1) -> int:
        if not isinstance(self.node, yaml.ScalarNode) or not self.node.tag.endswith(":int"):
            raise self.fail(f"{what}: expected an integer")
        v = int(self.node.value)
        if v < minimum:
            raise self.fail(f"{what}: must be at least {minimum}")
        return v

    def number(self, what: str) -> float:
        if not isinstance(self.node, yaml.ScalarNode) or not (
            self.node.tag.endswith(":int") or self.node.tag.endswith(":float")
        ):
            raise self.fail(f"{what}: expected a number")
        return float(self.node.value)

    def boolean(self, what: str) -> bool:
        if not isinstance(self.node, yaml.ScalarNode) or not self.node.tag.endswith(":bool"):
            raise self.fail(f"{what}: expected true or false")
        return bool(yaml.safe_load(self.node.value))

    def duration(self, what: str) -> int:
        try:
            return parse_duration(self.text(what))
        except ValueError as e:
            raise self.fail(f"{what}: {e}") from None

    def plain(self) -> Any:
        """The node as plain Python data (test events)."""
        return yaml.SafeLoader(yaml.serialize(self.node)).get_single_data()


def _bi(n: N, what: str) -> Text:
    if isinstance(n.node, yaml.ScalarNode):
        s = n.text(what)
        return Text(s, s)
    m = n.mapping(what, ("zh", "en"))
    if "zh" not in m or "en" not in m:
        raise n.fail(f"{what}: needs both zh and en")
    return Text(m["zh"].text(f"{what}.zh"), m["en"].text(f"{what}.en"))


def _every_window(m: dict[str, N], n: N, what: str) -> tuple[int, int]:
    for k in ("every", "window"):
        if k not in m:
            raise n.fail(f"{what}: missing {k!r}")
    every, window = m["every"].duration(f"{what}.every"), m["window"].duration(f"{what}.window")
    if window < every:
        raise m["window"].fail(
            f"{what}.window ({window}s) is shorter than every ({every}s): events would be skipped"
        )
    return every, window


def _need(m: dict[str, N], n: N, what: str, key: str) -> N:
    if key not in m:
        raise n.fail(f"{what}: missing {key!r}")
    return m[key]


def _opt_str(m: dict[str, N], key: str, what: str) -> str | None:
    return m[key].text(f"{what}.{key}") if key in m else None


def _match(n: N, what: str) -> Match:
    if isinstance(n.node, yaml.ScalarNode):
        return Match(n.text(what))
    m = n.mapping(what, ("search", "where"))
    return Match(_need(m, n, what, "search").text(f"{what}.search"), _opt_str(m, "where", what))


def _kind(name: str, n: N) -> Kind:
    w = name
    if name == "match":
        return _match(n, w)
    common = ("search", "where", "by", "every", "window")
    if name == "query":
        m = n.mapping(w, ("query", "every", "window", "trigger", "group_by"))
        every, window = _every_window(m, n, w)
        return Scheduled(
            _need(m, n, w, "query").text("query.query"),
            every,
            window,
            _opt_str(m, "trigger", w),
            m["group_by"].strs("query.group_by") if "group_by" in m else (),
        )
    if name == "threshold":
        m = n.mapping(w, (*common, "count"))
        every, window = _every_window(m, n, w)
        return Threshold(
            _need(m, n, w, "search").text("threshold.search"),
            _need(m, n, w, "by").strs("threshold.by"),
            _need(m, n, w, "count").integer("threshold.count"),
            every,
            window,
            _opt_str(m, "where", w),
        )
    if name == "cardinality":
        m = n.mapping(w, (*common, "distinct", "count"))
        every, window = _every_window(m, n, w)
        return Cardinality(
            _need(m, n, w, "search").text("cardinality.search"),
            _need(m, n, w, "by").strs("cardinality.by"),
            _need(m, n, w, "distinct").text("cardinality.distinct"),
            _need(m, n, w, "count").integer("cardinality.count"),
            every,
            window,
            _opt_str(m, "where", w),
        )
    if name == "new_term":
        m = n.mapping(w, (*common, "terms", "history", "learning"))
        every, window = _every_window(m, n, w)
        history = _need(m, n, w, "history").duration("new_term.history")
        # default: a day of history for the key, or the whole history when that is shorter
        learning = m["learning"].duration("new_term.learning") if "learning" in m else None
        if learning is not None and learning > history:
            raise m["learning"].fail(
                f"new_term.learning ({learning}s) is longer than history ({history}s): "
                "the key's first event would be out of reach"
            )
        return NewTerm(
            _need(m, n, w, "search").text("new_term.search"),
            _need(m, n, w, "by").strs("new_term.by") if "by" in m else (),
            _need(m, n, w, "terms").strs("new_term.terms"),
            history,
            every,
            window,
            _opt_str(m, "where", w),
            min(history, 86400) if learning is None else learning,
        )
    if name == "spike":
        m = n.mapping(w, (*common, "factor", "min_count", "reference"))
        every, window = _every_window(m, n, w)
        return Spike(
            _need(m, n, w, "search").text("spike.search"),
            _need(m, n, w, "by").strs("spike.by"),
            _need(m, n, w, "factor").number("spike.factor"),
            m["min_count"].integer("spike.min_count") if "min_count" in m else 10,
            _need(m, n, w, "reference").duration("spike.reference"),
            every,
            window,
            _opt_str(m, "where", w),
        )
    m = n.mapping(w, ("first", "then", "first_key", "then_key", "within", "lookback", "every",
                      "window"))  # fmt: skip
    every, window = _every_window(m, n, w)
    within = _need(m, n, w, "within").duration("sequence.within")
    return Sequence(
        _match(_need(m, n, w, "first"), "sequence.first"),
        _need(m, n, w, "first_key").text("sequence.first_key"),
        _match(_need(m, n, w, "then"), "sequence.then"),
        _need(m, n, w, "then_key").text("sequence.then_key"),
        within,
        m["lookback"].duration("sequence.lookback") if "lookback" in m else within,
        every,
        window,
    )


def _fields(n: N) -> tuple[DisplayField, ...]:
    out: list[DisplayField] = []
    seen: set[str] = set()
    for item in n.seq("fields"):
        m = item.mapping("fields[]")
        if len(m) != 1:
            raise item.fail("fields[]: each entry is one `alias: SLS SQL expression`")
        ((alias, expr),) = m.items()
        if alias in seen:
            raise item.fail(f"fields: duplicate alias {alias!r}")
        seen.add(alias)
        out.append(DisplayField(alias, expr.text(f"fields.{alias}")))
    return tuple(out)


def _exceptions(n: N) -> Exceptions:
    keys = ("users", "groups", "namespaces", "images", "cidrs", "user_agents")
    m = n.mapping("exceptions", keys)
    vals = {k: m[k].strs(f"exceptions.{k}") if k in m else () for k in keys}
    for c in m["cidrs"].seq("exceptions.cidrs") if "cidrs" in m else []:
        import ipaddress

        try:
            ipaddress.ip_network(c.text("exceptions.cidrs"), strict=False)
        except ValueError:
            raise c.fail(f"exceptions.cidrs: not a CIDR: {c.text('cidr')!r}") from None
    return Exceptions(**vals)


def _tests(n: N) -> tuple[RuleTest, ...]:
    out: list[RuleTest] = []
    for i, item in enumerate(n.seq("tests")):
        m = item.mapping("tests[]", ("name", "events", "event", "expect", "count"))
        what = f"tests[{i}]"
        if ("event" in m) == ("events" in m):
            raise item.fail(f"{what}: give `event` or `events`")
        evs = [m["event"]] if "event" in m else m["events"].seq(f"{what}.events")
        events = []
        for e in evs:
            e.mapping(f"{what}.event")
            events.append(e.plain())
        expect = _need(m, item, what, "expect").boolean(f"{what}.expect")
        out.append(
            RuleTest(
                m["name"].text(f"{what}.name") if "name" in m else f"test {i + 1}",
                tuple(events),
                expect,
                m["count"].integer(f"{what}.count", 0) if "count" in m else None,
                item.loc,
            )
        )
    return tuple(out)


def rule_from_node(n: N) -> Rule:
    m = n.mapping("rule", TOP_KEYS)
    rid = _need(m, n, "rule", "id").text("id")
    if not _ID.match(rid):
        raise m["id"].fail(f"id {rid!r}: use lower-case letters, digits, '.', '_' and '-'")
    kinds = [k for k in KINDS if k in m]
    if len(kinds) != 1:
        raise n.fail(f"rule {rid}: give exactly one of {', '.join(KINDS)}")
    severity = _need(m, n, "rule", "severity").text("severity")
    if severity not in SEVERITIES:
        raise m["severity"].fail(f"severity {severity!r}: one of {', '.join(SEVERITIES)}")
    mitre = _need(m, n, "rule", "mitre").strs("mitre")
    for t in m["mitre"].seq("mitre"):
        if not _MITRE.match(t.text("mitre")):
            raise t.fail(f"mitre: {t.text('mitre')!r} is not an ATT&CK technique id (T1234[.001])")
    if not mitre:
        raise m["mitre"].fail("mitre: at least one technique")
    labels: tuple[tuple[str, str], ...] = ()
    if "labels" in m:
        labels = tuple((k, v.text(f"labels.{k}")) for k, v in m["labels"].mapping("labels").items())
    min_level = _opt_str(m, "min_level", "rule") or "Metadata"
    if min_level not in _LEVELS:
        raise m["min_level"].fail(f"min_level: one of {', '.join(_LEVELS)}")
    dedup = Dedup()
    if "dedup" in m:
        d = m["dedup"].mapping("dedup", ("keys", "realert"))
        dedup = Dedup(
            d["keys"].strs("dedup.keys") if "keys" in d else (),
            d["realert"].duration("dedup.realert") if "realert" in d else 3600,
        )
    sev: Severity = severity  # type: ignore[assignment,unused-ignore]
    return Rule(
        id=rid,
        title=_bi(_need(m, n, "rule", "title"), "title"),
        description=_bi(_need(m, n, "rule", "description"), "description"),
        severity=sev,
        mitre=mitre,
        kind=_kind(kinds[0], m[kinds[0]]),
        fields=_fields(m["fields"]) if "fields" in m else (),
        labels=labels,
        enabled=m["enabled"].boolean("enabled") if "enabled" in m else True,
        dedup=dedup,
        exceptions=_exceptions(m["exceptions"]) if "exceptions" in m else Exceptions(),
        tests=_tests(m["tests"]) if "tests" in m else (),
        falco=m["falco"].strs("falco") if "falco" in m else (),
        needs=_opt_str(m, "needs", "rule"),
        min_level=min_level,
        location=n.loc,
    )


def load_text(text: str, source: str = "<rules>") -> list[Rule]:
    """Every rule of a YAML text (one rule per document, or a list of rules)."""
    try:
        docs = list(yaml.compose_all(text))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        loc = Location(source, mark.line + 1, mark.column + 1) if mark else Location(source)
        raise RuleError(f"YAML: {e.problem}", loc) from None
    rules: list[Rule] = []
    for doc in docs:
        if doc is None:
            continue
        n = N(doc, source)
        items = n.seq("rules") if isinstance(doc, yaml.SequenceNode) else [n]
        rules.extend(rule_from_node(item) for item in items)
    return rules


def load_file(path: Path) -> list[Rule]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RuleError(f"cannot read rule file: {e.strerror}", Location(str(path))) from None
    return load_text(text, str(path))


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            yield from sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
        else:
            yield p


def load_paths(paths: Iterable[Path], collect: list[RuleError] | None = None) -> list[Rule]:
    """Rules of files and directories; ids must be unique. With `collect`, errors are appended
    there and loading goes on."""
    rules: list[Rule] = []
    seen: dict[str, Rule] = {}
    for f in _files(paths):
        try:
            loaded = load_file(f)
        except RuleError as e:
            if collect is None:
                raise
            collect.append(e)
            continue
        for r in loaded:
            if r.id in seen:
                err = RuleError(f"duplicate rule id {r.id!r} (first at {seen[r.id].location})",
                                r.location)  # fmt: skip
                if collect is None:
                    raise err
                collect.append(err)
                continue
            seen[r.id] = r
            rules.append(r)
    return rules


def builtin_dir() -> Path:
    return Path(str(resources.files("kaudit.detect") / "rules"))


def builtin_rules() -> list[Rule]:
    """The rules shipped with kaudit (`src/kaudit/detect/rules/*.yaml`); a new list each
    call (of the same frozen rules, read once per process)."""
    return list(_builtin_rules())


@functools.cache
def _builtin_rules() -> tuple[Rule, ...]:
    return tuple(load_paths([builtin_dir()]))
