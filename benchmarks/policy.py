"""Benchmark: `policy simulate` of a 30-rule policy over 1,000,000 stored events.

Prints events/s of the simulation next to two baselines measured in the same run on the same
store: (1) a plain read of the attribute columns of every event into Python, (2) a plain read of
every stored event's raw JSON (`iter_raw`). Target: ≥ 200,000 events/s on 2 cores.

    .venv/bin/python benchmarks/policy.py [--events 1000000] [--db /tmp/kaudit-bench.duckdb]

The store is built from `kaudit.sample.generate` (deterministic) and kept at --db, so a second
run skips generation and ingest.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from kaudit.policy import Policy, load_policy
from kaudit.policy.recommend import profile_text
from kaudit.policy.simulate import StoreGroups, simulate
from kaudit.sample.generate import generate
from kaudit.store.base import CompiledQuery
from kaudit.store.duckdb import DuckDBStore

# 18 more rules in front of the 12 recommended ones: per-team quieting, per-namespace levels and
# a resourceNames rule, as real policies grow them.
EXTRA_RULES = """\
  - level: None
    users: ["system:serviceaccount:monitoring:prometheus"]
    verbs: ["get", "list", "watch"]
  - level: None
    userGroups: ["system:serviceaccounts:kube-system"]
    verbs: ["watch"]
  - level: Metadata
    resources:
      - group: ""
        resources: ["configmaps"]
        resourceNames: ["kube-root-ca.crt", "cluster-info"]
  - level: RequestResponse
    namespaces: ["payments", "prod"]
    verbs: ["create", "update", "patch", "delete"]
    resources:
      - group: "apps"
  - level: Request
    namespaces: ["kube-system"]
    verbs: ["create", "update", "patch", "delete"]
    resources:
      - group: ""
        resources: ["pods", "services"]
  - level: None
    users: ["system:serviceaccount:kube-system:generic-garbage-collector"]
  - level: None
    users: ["system:serviceaccount:kube-system:namespace-controller"]
    verbs: ["list", "get", "deletecollection"]
  - level: Metadata
    resources:
      - group: "metrics.k8s.io"
  - level: Metadata
    resources:
      - group: "snapshot.storage.k8s.io"
  - level: Metadata
    resources:
      - group: "cert-manager.io"
  - level: Request
    resources:
      - group: "argoproj.io"
  - level: None
    users: ["system:serviceaccount:flux-system:kustomize-controller"]
    verbs: ["get", "list", "watch"]
  - level: None
    users: ["system:serviceaccount:ingress-nginx:ingress-nginx"]
    verbs: ["get", "list", "watch"]
  - level: Metadata
    resources:
      - group: ""
        resources: ["pods/log", "pods/status"]
  - level: RequestResponse
    resources:
      - group: "rbac.authorization.k8s.io"
  - level: RequestResponse
    resources:
      - group: "admissionregistration.k8s.io"
  - level: Metadata
    resources:
      - group: "policy"
        resources: ["poddisruptionbudgets"]
  - level: None
    nonResourceURLs: ["/debug/pprof*"]
"""


def bench_policy() -> Policy:
    text = profile_text("recommended").replace("rules:\n", "rules:\n" + EXTRA_RULES, 1)
    policy = load_policy(text, source="bench-policy.yaml")
    assert len(policy.rules) == 30, len(policy.rules)
    return policy


def build_store(path: Path, n: int) -> DuckDBStore:
    if path.exists():
        store = DuckDBStore.open(path)
        if store.count() == n:
            return store
        store.close()
        path.unlink()
    store = DuckDBStore.open(path)
    t0 = time.perf_counter()
    batch: list[dict[str, object]] = []
    for ev in generate(n, seed=7):
        batch.append(ev)
        if len(batch) == 50_000:
            store.ingest_events(batch)
            batch.clear()
    if batch:
        store.ingest_events(batch)
    print(f"built store: {store.count():,} events in {time.perf_counter() - t0:.1f}s ({path})")
    return store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, default=Path("/tmp/kaudit-bench-policy.duckdb"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    store = build_store(args.db, args.events)
    n = store.count()
    policy = bench_policy()

    def best(fn: object) -> float:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()  # type: ignore[operator]
            times.append(time.perf_counter() - t0)
        return min(times)

    cols = (
        'SELECT "user.username", verb, "objectRef.namespace", "objectRef.apiGroup", '
        '"objectRef.resource", "objectRef.subresource", "objectRef.name", requestURI, level, '
        "stage, size FROM events"
    )

    def read_columns() -> None:
        store.execute(CompiledQuery(cols))

    def read_raw() -> None:
        for _ in store.iter_raw(batch_size=50_000):
            pass

    report = simulate(policy, StoreGroups(store))
    t_sim = best(lambda: simulate(policy, StoreGroups(store)))
    t_cols = best(read_columns)
    t_raw = best(read_raw) if args.repeat else 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"events: {n:,}; policy: {len(policy.rules)} rules; "
        f"distinct requests: {report.distinct_requests:,}; groups: {report.groups:,}"
    )
    print(f"{'':34} {'seconds':>8} {'events/s':>12}")
    for label, t in (
        ("policy simulate (SQL group + eval)", t_sim),
        ("baseline: read attribute columns", t_cols),
        ("baseline: read raw events", t_raw),
    ):
        print(f"{label:34} {t:8.2f} {n / t:12,.0f}")
    kept = report.total.kept
    print(
        f"kept {kept.events:,} of {report.total.recorded.events:,} events, "
        f"{kept.bytes / 1e6:,.0f} of {report.total.recorded.bytes / 1e6:,.0f} MB; "
        f"peak RSS {peak:,.0f} MB"
    )
    store.close()


if __name__ == "__main__":
    main()
