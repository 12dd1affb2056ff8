"""`kaudit ingest` reads every input format, detected automatically or forced."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

from kaudit.event.formats.legacy import format_legacy_line

from .conftest import event, exported, write_ndjson


def _ingest(
    kaudit: Callable[..., Result], db: Path, *args: str, input: Any = None
) -> dict[str, Any]:
    res = kaudit("ingest", "--db", str(db), "--json", *args, input=input)
    assert res.exit_code == 0, res.output
    summary: dict[str, Any] = json.loads(res.stdout)
    return summary


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(r["auditID"] for r in rows)


def test_ndjson_gz_directory_and_stdin(
    kaudit: Callable[..., Result], db: Path, tmp_path: Path
) -> None:
    evs = [event(i) for i in range(10)]
    d = tmp_path / "logs"
    d.mkdir()
    write_ndjson(d / "a.log", evs[:4])
    with gzip.open(d / "b.log.gz", "wt") as f:
        f.writelines(json.dumps(e) + "\n" for e in evs[4:7])
    (d / ".hidden").write_text("not read\n")
    assert _ingest(kaudit, db, str(d))["stored"] == 7
    stdin = "".join(json.dumps(e) + "\n" for e in evs[7:])
    assert _ingest(kaudit, db, "-", input=stdin)["stored"] == 3
    assert _ids(exported(kaudit, db)) == _ids(evs)


def test_eventlist_and_json_array(kaudit: Callable[..., Result], db: Path, tmp_path: Path) -> None:
    evs = [event(i) for i in range(6)]
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": evs[:3]}
    (tmp_path / "body.json").write_text(json.dumps(body, indent=2))
    (tmp_path / "arr.json").write_text(json.dumps(evs[3:], indent=1))
    assert _ingest(kaudit, db, str(tmp_path / "body.json"))["stored"] == 3
    assert _ingest(kaudit, db, str(tmp_path / "arr.json"))["stored"] == 3
    assert sorted(map(json.dumps, exported(kaudit, db))) == sorted(map(json.dumps, evs))


def test_legacy_lines(kaudit: Callable[..., Result], db: Path, tmp_path: Path) -> None:
    evs = [event(i) for i in range(3)]
    src = tmp_path / "legacy.log"
    src.write_text("".join(format_legacy_line(e) + "\n" for e in evs))
    assert _ingest(kaudit, db, str(src))["stored"] == 3
    rows = exported(kaudit, db)
    assert _ids(rows) == _ids(evs)
    assert {r["verb"] for r in rows} == {"get"}
    assert all(r["annotations"]["kaudit.io/source-format"] == "legacy" for r in rows)


def test_eks_cloudwatch_and_aks_records(
    kaudit: Callable[..., Result], db: Path, tmp_path: Path
) -> None:
    evs = [event(i) for i in range(4)]
    eks = tmp_path / "eks.json"
    eks.write_text(
        "".join(
            json.dumps(
                {
                    "timestamp": 1735689600000,
                    "message": json.dumps(e),
                    "logStream": "kube-apiserver-audit-abc",
                }
            )
            + "\n"
            for e in evs[:2]
        )
    )
    aks = tmp_path / "aks.json"
    aks.write_text(
        json.dumps(
            {
                "records": [
                    {"category": "kube-audit", "time": "x", "properties": {"log": json.dumps(e)}}
                    for e in evs[2:]
                ]
            }
        )
    )
    assert _ingest(kaudit, db, "--cluster", "eks-prod", str(eks))["stored"] == 2
    assert _ingest(kaudit, db, "--cluster", "aks-prod", str(aks))["stored"] == 2
    assert _ids(exported(kaudit, db, "--cluster", "eks-prod")) == _ids(evs[:2])
    assert _ids(exported(kaudit, db, "--cluster", "aks-prod")) == _ids(evs[2:])


def test_gke_entries_and_forced_format(
    kaudit: Callable[..., Result], db: Path, shared: Path, tmp_path: Path
) -> None:
    cases = json.loads((shared / "conformance" / "panther_cases.json").read_text())
    gke = [
        c["event"]
        for c in cases
        if c["shape"] == "gcp_cloud_audit_log"
        and c["event"].get("protoPayload", {}).get("serviceName") == "k8s.io"
    ]
    src = tmp_path / "gke.json"
    write_ndjson(src, gke)
    summary = _ingest(kaudit, db, "--format", "gke", str(src))
    assert summary["stored"] + summary["duplicates"] == len(gke)
    rows = exported(kaudit, db)
    assert all(r["annotations"]["kaudit.io/source-format"] == "gke" for r in rows)


def test_v1beta1_events_get_their_time_from_old_fields(
    kaudit: Callable[..., Result], db: Path, tmp_path: Path
) -> None:
    old = event(1, apiVersion="audit.k8s.io/v1beta1", timestamp="2019-03-04T05:06:07Z")
    old["metadata"] = {"creationTimestamp": "2019-03-04T05:06:08Z"}
    del old["requestReceivedTimestamp"]
    del old["stageTimestamp"]
    write_ndjson(tmp_path / "old.json", [old])
    _ingest(kaudit, db, str(tmp_path / "old.json"))
    res = kaudit("stats", "--db", str(db), "--json")
    stats = json.loads(res.stdout)
    assert stats["clusters"][0]["first"] == "2019-03-04T05:06:08Z"
    assert exported(kaudit, db) == [old]


def test_unknown_fields_are_kept(kaudit: Callable[..., Result], db: Path, tmp_path: Path) -> None:
    ev = event(
        1, authenticationMetadata={"impersonationConstraint": "x"}, futureField=[1, {"a": None}]
    )
    write_ndjson(tmp_path / "new.json", [ev])
    _ingest(kaudit, db, str(tmp_path / "new.json"))
    assert exported(kaudit, db) == [ev]


def test_header_csv(kaudit: Callable[..., Result], db: Path, tmp_path: Path) -> None:
    src = tmp_path / "export.csv"
    src.write_text(
        "auditID,stage,verb,user.username,responseStatus.code,stageTimestamp\n"
        "a-1,ResponseComplete,delete,alice,200,2025-01-01T00:00:00.000001Z\n"
    )
    _ingest(kaudit, db, str(src))
    assert exported(kaudit, db) == [
        {
            "auditID": "a-1",
            "stage": "ResponseComplete",
            "verb": "delete",
            "user": {"username": "alice"},
            "responseStatus": {"code": 200},
            "stageTimestamp": "2025-01-01T00:00:00.000001Z",
        }
    ]


def test_iter_events_gives_typed_records(shared: Path) -> None:
    from kaudit.event.batch import Reject
    from kaudit.event.decode import iter_events

    rejects: list[Reject] = []
    events = list(iter_events([str(shared / "corpus" / "falco_k8s_audit")], rejects=rejects))
    # fal_01_003.json is `{"kind": 0}`: no auditID, so no typed record
    assert len(events) == 51 and [r.reason for r in rejects] == ["missing_field"]
    exec_ev = next(e for e in events if e.subresource == "exec")
    assert exec_ev.verb in ("create", "get") and exec_ev.resource == "pods"
    assert exec_ev.stage_time.tzinfo is not None and exec_ev.raw["auditID"] == exec_ev.audit_id


def test_export_selects_by_cluster_and_search(
    kaudit: Callable[..., Result], db: Path, tmp_path: Path
) -> None:
    evs = [event(i, verb="delete" if i % 2 else "get") for i in range(6)]
    write_ndjson(tmp_path / "a.log", evs)
    _ingest(kaudit, db, "--cluster", "a", str(tmp_path / "a.log"))
    _ingest(kaudit, db, "--cluster", "b", str(tmp_path / "a.log"))
    rows = exported(kaudit, db, "--cluster", "b", "--where", "verb:delete")
    assert _ids(rows) == _ids([e for e in evs if e["verb"] == "delete"])
