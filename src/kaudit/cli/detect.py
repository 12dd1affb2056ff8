"""`kaudit rules`, `kaudit alerts`, `kaudit silence` and `kaudit detect` (issue 6)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson

from kaudit.cli.core import DEFAULT_DB
from kaudit.errors import ConfigError

_db = click.option("--db", "db", default=DEFAULT_DB, show_default=True,
                   type=click.Path(dir_okay=False), help="kaudit store file")  # fmt: skip
_rules_opt = click.option(
    "--rules", "rule_paths", multiple=True, type=click.Path(exists=True),
    help="Rule files or directories (default: the built-in rules).",
)  # fmt: skip


def _echo(obj: Any) -> None:
    click.echo(orjson.dumps(obj, default=str).decode())


def _load(rule_paths: tuple[str, ...]) -> list[Any]:
    from kaudit.detect.load import builtin_rules, load_paths

    return load_paths([Path(p) for p in rule_paths]) if rule_paths else builtin_rules()


def _time(text: str) -> int:
    try:
        if text.isdigit():
            return int(text)
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise ConfigError(f"not a time: {text!r} (ISO 8601 or unix seconds)") from None


def _duration(text: str) -> int:
    from kaudit.units import parse_duration

    try:
        return parse_duration(text)
    except ValueError as e:
        raise ConfigError(str(e)) from None


@click.group("rules")
def rules_cmd() -> None:
    """Detection rules: list, show, test, lint, backtest, import Sigma."""


@rules_cmd.command("list")
@_rules_opt
@click.option("--json", "as_json", is_flag=True)
def rules_list(rule_paths: tuple[str, ...], as_json: bool) -> None:
    """One line per rule: id, kind, severity, MITRE, title."""
    for r in _load(rule_paths):
        row = {"id": r.id, "kind": r.kind_name, "severity": r.severity, "enabled": r.enabled,
               "mitre": list(r.mitre), "title": r.title.en, "min_level": r.min_level}  # fmt: skip
        if as_json:
            _echo(row)
        else:
            flag = "" if r.enabled else " (disabled)"
            click.echo(f"{r.id:32} {r.kind_name:10} {r.severity:8} {','.join(r.mitre):16} "
                       f"{r.title.en}{flag}")  # fmt: skip


@rules_cmd.command("show")
@_rules_opt
@click.argument("rule_id")
def rules_show(rule_paths: tuple[str, ...], rule_id: str) -> None:
    """A rule and the SQL it compiles to."""
    from kaudit.detect.compile import compile_rule

    r = _pick(_load(rule_paths), rule_id)
    click.echo(f"{r.id}  [{r.kind_name}, {r.severity}]  {', '.join(r.mitre)}")
    click.echo(f"  {r.title.zh} / {r.title.en}\n  {r.description.en}")
    if r.falco:
        click.echo(f"  Falco: {', '.join(r.falco)}")
    click.echo(f"  audit level needed: {r.min_level}; defined at {r.location}")
    click.echo(compile_rule(r).sql)


def _pick(rules: list[Any], rule_id: str) -> Any:
    for r in rules:
        if r.id == rule_id:
            return r
    raise ConfigError(f"no rule {rule_id!r} (see `kaudit rules list`)")


@rules_cmd.command("test")
@_rules_opt
@click.option("--rule", "only", default=None)
def rules_test(rule_paths: tuple[str, ...], only: str | None) -> None:
    """Run the rules' inline tests; exit 1 when one fails."""
    from kaudit.detect.engine import run_tests

    failed = 0
    for r in _load(rule_paths):
        if only and r.id != only:
            continue
        for t in run_tests(r):
            click.echo(f"{'ok  ' if t.ok else 'FAIL'} {r.id}: {t.name} ({t.detail})")
            failed += not t.ok
    if failed:
        sys.exit(1)


@rules_cmd.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def rules_lint(paths: tuple[str, ...]) -> None:
    """Check rule files: every error with file:line:col; each rule compiled once."""
    from kaudit.detect.compile import compile_rule
    from kaudit.detect.load import load_paths
    from kaudit.detect.model import RuleError

    errors: list[RuleError] = []
    rules = load_paths([Path(p) for p in paths], errors)
    for r in rules:
        try:
            compile_rule(r)
        except RuleError as err:
            errors.append(err)
        if not r.tests:
            click.echo(f"{r.location}: warning: rule {r.id} has no inline tests")
    for e in errors:
        click.echo(str(e))
    click.echo(f"{len(rules)} rule(s), {len(errors)} error(s)")
    if errors:
        sys.exit(1)


@rules_cmd.command("backtest")
@_db
@_rules_opt
@click.option("--from", "start", required=True, help="ISO time or unix seconds")
@click.option("--to", "end", required=True)
@click.option("--rule", "only", default=None)
def rules_backtest(db: str, rule_paths: tuple[str, ...], start: str, end: str,
                   only: str | None) -> None:  # fmt: skip
    """Run rules over stored history; print hits as JSON lines."""
    from kaudit.detect.engine import backtest
    from kaudit.store.duckdb import DuckDBStore

    rules = [r for r in _load(rule_paths) if (only is None and r.enabled) or r.id == only]
    if only and not rules:
        raise ConfigError(f"no rule {only!r}")
    with DuckDBStore.open(db, read_only=True) as store:
        for h in backtest(store, rules, _time(start), _time(end)):
            _echo({"rule": h.rule_id, "key": h.key, "count": h.count, "fields": h.fields,
                   "event_ids": h.event_ids, "first": h.first, "last": h.last})  # fmt: skip


@rules_cmd.command("import-sigma")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write one kaudit rule file per Sigma rule here (default: print).")  # fmt: skip
def rules_import_sigma(paths: tuple[str, ...], out_dir: str | None) -> None:
    """Convert Sigma rules (product kubernetes, service audit) into kaudit rules."""
    from kaudit.detect.sigma import convert_paths

    failed = 0
    for path, result in convert_paths([Path(p) for p in paths]):
        if isinstance(result, str):
            click.echo(f"{path}: refused: {result}", err=True)
            failed += 1
            continue
        if out_dir:
            target = Path(out_dir) / f"{Path(path).stem}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(result, encoding="utf-8")
            click.echo(f"{path} -> {target}")
        else:
            click.echo(f"# from {path}\n{result}---")
    if failed:
        sys.exit(1)


@contextlib.contextmanager
def _alerts_of(db: str, read_only: bool = False) -> Iterator[Any]:
    """The store's `AlertStore`, or the same calls through the API of the `kaudit serve` that
    holds the store (DuckDB allows one writer process)."""
    from kaudit.alert.store import AlertStore
    from kaudit.serve.client import RemoteAlerts, store_or_remote

    local, remote = store_or_remote(db, read_only=False)
    if remote is not None:
        yield RemoteAlerts(remote)
        return
    with local as store:
        yield AlertStore(store)


@click.group("alerts")
def alerts_cmd() -> None:
    """Stored alerts: list, show, ack, resolve."""


@alerts_cmd.command("list")
@_db
@click.option("--status", default=None)
@click.option("--rule", default=None)
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def alerts_list(db: str, status: str | None, rule: str | None, limit: int,
                as_json: bool) -> None:  # fmt: skip
    with _alerts_of(db) as alerts:
        for a in alerts.list_alerts(status, rule, limit):
            if as_json:
                _echo(a.as_dict())
            else:
                last = datetime.fromtimestamp(a.last_seen, UTC).strftime("%Y-%m-%d %H:%M:%S")
                click.echo(f"{a.fingerprint} {a.status:12} {a.severity:8} {a.count:6} {last} "
                           f"{a.rule_id}  {a.title}")  # fmt: skip


def _status_cmd(name: str, status: str) -> click.Command:
    @click.command(name)
    @_db
    @click.argument("fingerprint")
    def cmd(db: str, fingerprint: str) -> None:
        with _alerts_of(db) as alerts:
            a = alerts.set_status(fingerprint, status)
        click.echo(f"{a.fingerprint} {a.status}")

    cmd.help = f"Mark an alert {status} (a fingerprint prefix is enough)."
    return cmd


@alerts_cmd.command("show")
@_db
@click.argument("fingerprint")
def alerts_show(db: str, fingerprint: str) -> None:
    with _alerts_of(db) as alerts:
        click.echo(orjson.dumps(alerts.find(fingerprint).as_dict(),
                                option=orjson.OPT_INDENT_2, default=str).decode())  # fmt: skip


alerts_cmd.add_command(_status_cmd("ack", "acknowledged"))
alerts_cmd.add_command(_status_cmd("resolve", "resolved"))


@click.group("silence")
def silence_cmd() -> None:
    """Silences: hold back matching alerts until they expire."""


@silence_cmd.command("add")
@_db
@click.option("--rule", default=None, help="Only this rule (default: every rule).")
@click.option("--match", "matches", multiple=True,
              help="field:value (display field or label; value* is a prefix)")  # fmt: skip
@click.option("--for", "duration", required=True, help="e.g. 30m, 2h, 7d")
@click.option("--comment", default="")
def silence_add(db: str, rule: str | None, matches: tuple[str, ...], duration: str,
                comment: str) -> None:  # fmt: skip
    from kaudit.serve.client import RemoteAlerts

    pairs = []
    for m in matches:
        name, sep, value = m.rpartition(":")
        if not sep or not name:
            raise ConfigError(f"--match {m!r}: use field:value")
        pairs.append((name, value))
    if rule is None and not pairs:
        raise ConfigError("a silence needs --rule or --match")
    expires = int(time.time()) + _duration(duration)
    with _alerts_of(db) as alerts:
        if isinstance(alerts, RemoteAlerts):
            s = alerts.add_silence_for(rule, pairs, duration, comment)
            expires = s.expires
        else:
            s = alerts.add_silence(rule, pairs, expires, comment)
    click.echo(f"silence {s.id} until {datetime.fromtimestamp(expires, UTC).isoformat()}")


@silence_cmd.command("list")
@_db
def silence_list(db: str) -> None:
    with _alerts_of(db) as alerts:
        for s in alerts.silences(time.time()):
            until = datetime.fromtimestamp(s.expires, UTC).isoformat()
            m = " ".join(f"{k}:{v}" for k, v in s.matchers)
            click.echo(f"{s.id} rule={s.rule or '*'} {m} until {until} {s.comment}")


@silence_cmd.command("remove")
@_db
@click.argument("silence_id")
def silence_remove(db: str, silence_id: str) -> None:
    with _alerts_of(db) as alerts:
        alerts.remove_silence(silence_id)
    click.echo(f"removed {silence_id}")


@click.command("detect")
@_rules_opt
@click.option("--cluster", default="default", show_default=True)
@click.argument("inputs", nargs=-1, required=True)
def detect_cmd(rule_paths: tuple[str, ...], cluster: str, inputs: tuple[str, ...]) -> None:
    """Ingest files into a temporary store, run every rule, print alerts as JSON lines.

    Exit code: 0 when nothing fired, 3 when some rule fired, 1 on an error.
    """
    from kaudit.alert.model import fingerprint
    from kaudit.detect.engine import run_all
    from kaudit.event.decode import DecodeOptions, expand_inputs
    from kaudit.sources.bulk import ingest
    from kaudit.store.duckdb import DuckDBStore

    rules = _load(rule_paths)
    by_id = {r.id: r for r in rules}
    with DuckDBStore.open(":memory:") as store:
        ingest(store, expand_inputs(inputs), DecodeOptions(cluster=cluster))
        hits = run_all(store, rules)
    for h in hits:
        r = by_id[h.rule_id]
        _echo({"fingerprint": fingerprint(h.rule_id, h.key), "rule": r.id,
               "title": r.title.en, "severity": r.severity, "mitre": list(r.mitre),
               "count": h.count, "first_seen": h.first, "last_seen": h.last,
               "fields": h.fields, "event_ids": h.event_ids})  # fmt: skip
    if hits:
        sys.exit(3)


COMMANDS: dict[str, click.Command] = {
    "rules": rules_cmd,
    "alerts": alerts_cmd,
    "silence": silence_cmd,
    "detect": detect_cmd,
}
