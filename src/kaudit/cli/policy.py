"""`kaudit policy …`: check, explain, lint, simulate, diff, recommend, apiserver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import orjson

from kaudit.errors import ConfigError, InputError, Location

# Options shared by the commands that read a policy file.
_KV = click.option(
    "--kubernetes-version",
    "kubernetes_version",
    default=None,
    metavar="X.Y",
    help="Apply this release's policy semantics (default: the latest).",
)
_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", Location(path)) from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text", Location(path)) from None


def _load(path: str, kubernetes_version: str | None) -> Any:
    from kaudit.policy import load_policy

    return load_policy(_read(path), source=path, kubernetes_version=kubernetes_version)


@click.group(name="policy", help="Audit-policy workbench: validate, explain, lint, simulate.")
def policy_group() -> None:
    pass


@policy_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@_KV
def check_cmd(file: str, kubernetes_version: str | None) -> None:
    """Validate FILE as kube-apiserver would; exit 1 listing every error."""
    from kaudit.policy import check_policy

    result = check_policy(_read(file), source=file, kubernetes_version=kubernetes_version)
    for w in result.warnings:
        click.echo(f"{file}:{w.line or '?'}: warning: {w.field}: {w.message}")
    if result.errors:
        for e in result.errors:
            click.echo(f"{e}", err=True)
        click.echo(f"{file}: invalid ({len(result.errors)} error(s))", err=True)
        raise SystemExit(1)
    assert result.policy is not None
    click.echo(
        f"{file}: OK, {len(result.policy.rules)} rules, {result.policy.api_version} "
        f"(Kubernetes {result.policy.semantics} semantics)"
    )


@policy_group.command("explain")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--url", help="Request URL (path and query), with --method.")
@click.option("--method", default="GET", show_default=True, help="HTTP method for --url.")
@click.option("--event", "event", help="A stored audit event: JSON text, or @FILE.")
@click.option("--verb", help="Kube verb (get, list, create, ...).")
@click.option("--resource", help="Resource, or resource/subresource (pods/exec).")
@click.option("--api-group", default="", help="API group of --resource ('' = core).")
@click.option("--namespace", default="", help="Namespace of the request.")
@click.option("--name", default="", help="Object name.")
@click.option("--path", "path", default="", help="Non-resource path (with --verb).")
@click.option("--user", default=None, help="Authenticated user (omit for no user).")
@click.option("--group", "groups", multiple=True, help="User group (repeatable).")
@_KV
@_FORMAT
def explain_cmd(
    file: str,
    url: str | None,
    method: str,
    event: str | None,
    verb: str | None,
    resource: str | None,
    api_group: str,
    namespace: str,
    name: str,
    path: str,
    user: str | None,
    groups: tuple[str, ...],
    kubernetes_version: str | None,
    fmt: str,
) -> None:
    """Which rule decides a request, and why each earlier rule did not match."""
    from dataclasses import replace

    from kaudit.policy import RequestAttributes, request_info

    policy = _load(file, kubernetes_version)
    chosen = [x for x in (url, event, verb) if x]
    if len(chosen) != 1:
        raise ConfigError("give exactly one of --url, --event or --verb")
    if url:
        attrs = replace(request_info(method, url), user=user, groups=groups)
    elif event:
        text = _read(event[1:]) if event.startswith("@") else event
        try:
            ev = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"--event is not JSON: {exc}") from None
        if not isinstance(ev, dict):
            raise InputError("--event must be a JSON object (one audit event)")
        attrs = RequestAttributes.from_event(ev)
    else:
        res, _, sub = (resource or "").partition("/")
        attrs = RequestAttributes(
            user=user,
            groups=groups,
            verb=verb or "",
            resource_request=bool(resource),
            namespace=namespace,
            api_group=api_group,
            resource=res,
            subresource=sub,
            name=name,
            path=path,
        )
    decision = policy.evaluate(attrs)
    steps = policy.evaluator.explain(attrs)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "request": _attrs(attrs),
                    "level": decision.level,
                    "omit_stages": sorted(decision.omit_stages),
                    "omit_managed_fields": decision.omit_managed_fields,
                    "rule_index": decision.rule_index,
                    "rules": [
                        {
                            "index": s.index,
                            "line": policy.rules[s.index].line,
                            "matched": s.matched,
                            "checks": [
                                {"field": c.field, "ok": c.ok, "detail": c.detail} for c in s.checks
                            ],
                        }
                        for s in steps
                    ],
                },
                indent=2,
            )
        )
        return
    from kaudit.policy.simulate import shape

    click.echo(f"request: {shape(attrs)}" + (f" ns={attrs.namespace}" if attrs.namespace else ""))
    click.echo(f"level: {decision.level}")
    click.echo(f"omitted stages: {', '.join(sorted(decision.omit_stages)) or '(none)'}")
    click.echo(f"omit managedFields: {str(decision.omit_managed_fields).lower()}")
    for s in steps:
        line = policy.rules[s.index].line
        head = f"rule {s.index} (line {line}, {policy.rules[s.index].level})"
        verdict = "MATCHED" if s.matched else "no match"
        click.echo(f"  {head}: {verdict}")
        for c in s.checks:
            click.echo(f"    {'✓' if c.ok else '✗'} {c.field}: {c.detail}")
    if decision.rule_index is None:
        click.echo("no rule matched: the request is not audited (level None, spec §4.1)")


def _attrs(attrs: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(attrs)


@policy_group.command("lint")
@click.argument("file", type=click.Path(dir_okay=False))
@_KV
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def lint_cmd(file: str, kubernetes_version: str | None, fmt: str) -> None:
    """Findings with severity and line; exit 1 when there is an error or a warning."""
    from kaudit.policy.lint import lint_text

    findings = lint_text(_read(file), source=file, kubernetes_version=kubernetes_version)
    if fmt == "json":
        click.echo(json.dumps([_finding(f) for f in findings], indent=2))
    else:
        for f in findings:
            click.echo(f"{file}:{f.line or '-'}: {f.severity}: [{f.check}] {f.message}")
        counts = {s: sum(1 for f in findings if f.severity == s) for s in ("error", "warning")}
        click.echo(
            f"{file}: {counts['error']} error(s), {counts['warning']} warning(s), "
            f"{len(findings) - counts['error'] - counts['warning']} note(s)"
        )
    if any(f.severity in ("error", "warning") for f in findings):
        raise SystemExit(1)


def _finding(f: Any) -> dict[str, Any]:
    return {
        "check": f.check,
        "severity": f.severity,
        "line": f.line,
        "rule_index": f.rule_index,
        "message": f.message,
    }


def _source(db: str | None, events: tuple[str, ...], also: tuple[Any, ...] = ()) -> Any:
    from kaudit.policy.simulate import FileGroups, ProbeGroups, StoreGroups

    if db and events:
        raise ConfigError("give --db or --events, not both")
    if db:
        from kaudit.store.duckdb import DuckDBStore

        return StoreGroups(DuckDBStore.open(db, read_only=True), also=also)
    if events:
        return FileGroups(events)
    return ProbeGroups()


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _table(rows: list[Any]) -> None:
    click.echo(
        f"  {'':28} {'recorded':>10} {'kept':>10} {'dropped':>10} "
        f"{'bytes rec.':>11} {'bytes kept':>11} {'saved':>6}"
    )
    for r in rows:
        rec, kept = r.recorded, r.kept
        if not rec.events:
            continue
        saved = 100 * (rec.bytes - kept.bytes) / rec.bytes if rec.bytes else 0.0
        click.echo(
            f"  {r.key:28} {rec.events:>10} {kept.events:>10} {rec.events - kept.events:>10} "
            f"{_size(rec.bytes):>11} {_size(kept.bytes):>11} {saved:>5.0f}%"
        )


@policy_group.command("simulate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--db", type=click.Path(dir_okay=False), help="A kaudit store to replay.")
@click.option("--events", multiple=True, type=click.Path(dir_okay=False), help="NDJSON files.")
@_KV
@_FORMAT
def simulate_cmd(
    file: str, db: str | None, events: tuple[str, ...], kubernetes_version: str | None, fmt: str
) -> None:
    """Replay recorded events under FILE: kept/dropped per rule and per level."""
    from kaudit.policy.simulate import simulate

    if not db and not events:
        raise ConfigError("give --db PATH or --events FILE to replay")
    policy = _load(file, kubernetes_version)
    report = simulate(policy, _source(db, events))
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    click.echo(
        f"{report.total.recorded.events} recorded events, {report.distinct_requests} distinct "
        f"requests, simulated in {report.elapsed_s:.2f}s"
    )
    click.echo("per rule of the candidate policy:")
    _table(list(report.by_rule.values()))
    click.echo("per new level:")
    _table(list(report.by_level.values()))
    click.echo("total:")
    _table([report.total])
    if report.raised:
        click.echo(
            f"{report.raised} events would be logged above their recorded level; their new "
            "size cannot include bodies that were never recorded"
        )
    lost = [d for d in report.detections if d.lost]
    for d in lost:
        click.echo(
            f"detection {d.detection} loses {d.lost} of {d.recorded} input events "
            f"(needs {d.min_level})"
        )
    if not lost:
        click.echo("no detection loses input events")


@policy_group.command("diff")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("--db", type=click.Path(dir_okay=False), help="A kaudit store to replay.")
@click.option("--events", multiple=True, type=click.Path(dir_okay=False), help="NDJSON files.")
@_KV
@_FORMAT
def diff_cmd(
    old: str,
    new: str,
    db: str | None,
    events: tuple[str, ...],
    kubernetes_version: str | None,
    fmt: str,
) -> None:
    """Requests whose level or stages change from OLD to NEW, grouped.

    Without --db/--events, a built-in set of typical requests is compared.
    """
    from kaudit.policy.simulate import diff

    p_old, p_new = _load(old, kubernetes_version), _load(new, kubernetes_version)
    groups = diff(p_old, p_new, _source(db, events, also=(p_new,)))
    if fmt == "json":
        click.echo(json.dumps([g.to_dict() for g in groups], indent=2))
        return
    unit = "events" if (db or events) else "probe requests"
    if not groups:
        click.echo(f"no {unit} change level or stages")
    for g in groups:
        a, b = g.old, g.new

        def d(x: Any) -> str:
            stages = ",".join(sorted(x.omit_stages)) or "-"
            rule = "no rule" if x.rule_index is None else f"rule {x.rule_index}"
            return f"{x.level} ({rule}; omit {stages})"

        click.echo(f"{d(a)} -> {d(b)}: {g.events} {unit}")
        for k, v in sorted(g.shapes.items(), key=lambda kv: -kv[1])[:8]:
            click.echo(f"    {v:>8}  {k}")


@policy_group.command("recommend")
@click.option(
    "--profile",
    type=click.Choice(["minimal", "recommended", "forensic"]),
    default="recommended",
    show_default=True,
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file.")
def recommend_cmd(profile: str, output: str | None) -> None:
    """Print kaudit's audit policy, each rule commented with why."""
    from kaudit.policy.recommend import profile_text

    text = profile_text(profile)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output} ({profile} profile)", err=True)
    else:
        click.echo(text, nl=False)


@policy_group.command("apiserver")
@click.option("--webhook-url", help="Also send events to this kaudit webhook URL.")
@click.option("--policy-file", default="/etc/kubernetes/audit-policy.yml", show_default=True)
@click.option("--log-path", default="/var/log/kubernetes/kubernetes.audit", show_default=True)
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False),
    help="An existing kube-apiserver.yaml: print it patched (with --write, patch it in place).",
)
@click.option("--write", is_flag=True, help="With --manifest: write the file (keeps a .bak).")
def apiserver_cmd(
    webhook_url: str | None,
    policy_file: str,
    log_path: str,
    manifest: str | None,
    write: bool,
) -> None:
    """The kube-apiserver audit flags and the static-pod manifest patch."""
    from kaudit.policy.apiserver import MANIFEST, AuditSetup

    setup = AuditSetup(policy_file=policy_file, log_path=log_path, webhook_url=webhook_url)
    if write and not manifest:
        raise ConfigError("--write needs --manifest FILE")
    if manifest:
        text = _read(manifest)
        patched = setup.patch_manifest(text, manifest)
        if write:
            Path(manifest + ".bak").write_text(text, encoding="utf-8")
            Path(manifest).write_text(patched, encoding="utf-8")
            click.echo(f"patched {manifest} (backup {manifest}.bak)", err=True)
        else:
            click.echo(patched, nl=False)
        return
    click.echo("# 1. kube-apiserver flags")
    for f in setup.flags():
        click.echo(f"    - {f}")
    click.echo(
        f"# 2. {MANIFEST}: add the flags above to the container command, and these mounts\n"
        "#    (or run: kaudit policy apiserver --manifest "
        f"{MANIFEST} --write)"
    )
    import yaml

    click.echo(
        yaml.safe_dump(
            {"volumeMounts": setup.volume_mounts(), "volumes": setup.volumes()}, sort_keys=False
        ),
        nl=False,
    )
    click.echo("# 3. kubeadm: save as kube-apiserver+json.yaml in a --patches directory")
    click.echo(setup.kubeadm_patch(), nl=False)
    if webhook_url:
        click.echo(f"# 4. {setup.webhook_config_file}")
        click.echo(setup.webhook_kubeconfig(), nl=False)
    click.echo(
        f"# then: kaudit policy recommend > {policy_file}; the kubelet restarts the apiserver "
        "when the manifest changes"
    )


COMMANDS: dict[str, click.Command] = {"policy": policy_group}
