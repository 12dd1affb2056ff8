"""`kaudit generate`: realistic sample audit NDJSON with injected attacks (docs/sample.md)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import click

from kaudit.errors import ConfigError
from kaudit.sample.attacks import ATTACK_KINDS
from kaudit.sample.generate import (
    DEFAULT_ATTACK_RATE,
    DEFAULT_NODES,
    write_ndjson,
)
from kaudit.units import parse_duration


def _duration(text: str) -> timedelta:
    try:
        return timedelta(seconds=parse_duration(text))
    except ValueError:
        raise ConfigError(
            f"--span: expected a duration such as 30m, 24h or 7d, got {text!r}"
        ) from None


def _start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--start: expected an ISO 8601 time such as 2025-01-01T00:00:00Z, got {text!r}"
        ) from None


def _weights(items: tuple[str, ...]) -> dict[str, float]:
    weights: dict[str, float] = {}
    for item in items:
        kind, sep, value = item.partition("=")
        try:
            weights[kind.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--attack: expected KIND=WEIGHT, got {item!r}") from None
        if not sep:
            raise ConfigError(f"--attack: expected KIND=WEIGHT, got {item!r}")
    return weights


@click.command(
    "generate",
    help=(
        "Write realistic audit.k8s.io/v1 events (NDJSON, as kube-apiserver's log backend writes "
        "them) with injected attacks. Same --seed and --start give the same bytes."
    ),
)
@click.option("--events", "-n", type=click.IntRange(min=0), required=True, help="How many events.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Output file (gzip when it ends in .gz); standard output when omitted.",
)
@click.option(
    "--start",
    default=None,
    help="Time of the first event (ISO 8601, UTC if no offset). Default: now minus --span.",
)
@click.option("--span", default="24h", show_default=True, help="Time range covered: 30m, 24h, 7d.")
@click.option(
    "--truth",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the injected attacks (auditID, kind, ...) as JSON lines to this file.",
)
@click.option(
    "--attack-rate",
    type=float,
    default=DEFAULT_ATTACK_RATE,
    show_default=True,
    help="Probability that a request starts an attack campaign; 0 for clean traffic.",
)
@click.option(
    "--attack",
    "attack",
    multiple=True,
    metavar="KIND=WEIGHT",
    help=f"Relative weight of an attack kind (0 disables it). Kinds: {', '.join(ATTACK_KINDS)}.",
)
@click.option(
    "--nodes", type=int, default=DEFAULT_NODES, show_default=True, help="Worker nodes (kubelets)."
)
@click.option("--quiet", "-q", is_flag=True, help="Do not print the summary on standard error.")
def generate_command(
    events: int,
    seed: int,
    out: Path | None,
    start: str | None,
    span: str,
    truth: Path | None,
    attack_rate: float,
    attack: tuple[str, ...],
    nodes: int,
    quiet: bool,
) -> None:
    target = out if out is not None else sys.stdout.buffer
    summary = write_ndjson(
        target,
        events,
        seed,
        _start(start),
        truth_out=truth,
        attack_rate=attack_rate,
        attack_weights=_weights(attack),
        span=_duration(span),
        nodes=nodes,
    )
    if quiet:
        return
    attacks = ", ".join(f"{k} {v}" for k, v in summary.attacks.items()) or "none"
    lines = [
        f"kaudit generate: {summary.events} events, {summary.bytes / 1e6:.1f} MB "
        f"in {summary.elapsed_s:.2f} s ({summary.events_per_s:,.0f} events/s)",
        f"  time: {summary.first} .. {summary.last}",
        f"  attacks: {summary.campaigns} campaigns; requests by kind: {attacks}",
    ]
    click.echo("\n".join(lines), err=True)
    sys.stderr.flush()


COMMANDS: dict[str, click.Command] = {"generate": generate_command}
