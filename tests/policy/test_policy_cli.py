"""`kaudit policy …` through click's CliRunner, with real files."""

from __future__ import annotations

import json
from pathlib import Path

import click
import orjson
import pytest
import yaml
from click.testing import CliRunner, Result

from kaudit.cli.main import _Root
from kaudit.cli.policy import COMMANDS
from kaudit.policy.recommend import profile_text
from kaudit.store.duckdb import DuckDBStore

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
MICROK8S = SHARED / "corpus" / "microk8s_startup_v1.ndjson"


def run(*args: str) -> Result:
    # the real root group, so UserErrors print as one line with exit 1
    root = _Root(name="kaudit")
    root.add_command(COMMANDS["policy"], "policy")
    return CliRunner().invoke(root, ["policy", *args])


@pytest.fixture
def recommended(tmp_path: Path) -> Path:
    p = tmp_path / "audit-policy.yml"
    assert run("recommend", "-o", str(p)).exit_code == 0
    return p


def test_commands_are_registered() -> None:
    group = COMMANDS["policy"]
    assert isinstance(group, click.Group)
    assert set(group.commands) == {
        "check", "explain", "lint", "simulate", "diff", "recommend", "apiserver",
    }  # fmt: skip


def test_recommend_prints_the_profile() -> None:
    res = run("recommend", "--profile", "minimal")
    assert res.exit_code == 0 and res.output == profile_text("minimal")


def test_check_ok_and_every_error(recommended: Path, tmp_path: Path) -> None:
    ok = run("check", str(recommended))
    assert ok.exit_code == 0 and "OK, 12 rules" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n"
        "- level: None\n  nonResourceURLs: [healthz]\n  verb: [get]\n"
    )
    res = run("check", str(bad))
    assert res.exit_code == 1
    assert f"{bad}:4: rules[0].level: Unsupported value" in res.output
    assert f"{bad}:6: rules[1].nonResourceURLs[0]" in res.output
    assert f"{bad}:7: warning" not in res.output  # warnings only for valid files
    assert "2 error(s)" in res.output


def test_check_missing_file_is_one_line() -> None:
    res = run("check", "/nonexistent/policy.yaml")
    assert res.exit_code == 1
    assert res.output.startswith("kaudit: error: /nonexistent/policy.yaml: cannot read")


def test_explain_url_event_and_fields(recommended: Path, tmp_path: Path) -> None:
    res = run("explain", str(recommended), "--url", "/api/v1/namespaces/d/secrets/s",
              "--user", "alice", "--group", "dev")  # fmt: skip
    assert res.exit_code == 0
    assert "level: Metadata" in res.output and "MATCHED" in res.output
    assert "matched resources[0]" in res.output
    ev = tmp_path / "ev.json"
    ev.write_text(MICROK8S.read_text().splitlines()[0])
    js = run("explain", str(recommended), "--event", f"@{ev}", "--format", "json")
    data = json.loads(js.output)
    assert data["rules"][-1]["matched"] is (data["rule_index"] is not None)
    health = run("explain", str(recommended), "--verb", "get", "--path", "/healthz")
    assert "level: None" in health.output and "'/healthz*'" in health.output
    none = run("explain", str(recommended), "--verb", "get")
    assert none.exit_code == 0
    both = run("explain", str(recommended), "--verb", "get", "--url", "/api")
    assert both.exit_code == 1 and "exactly one" in both.output


def test_lint_exit_codes(recommended: Path, tmp_path: Path) -> None:
    clean = run("lint", str(recommended))
    assert clean.exit_code == 0 and "0 error(s), 0 warning(s)" in clean.output
    loud = tmp_path / "loud.yaml"
    loud.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n")
    res = run("lint", str(loud))
    assert res.exit_code == 1
    assert f"{loud}:4: error: [credential-leak]" in res.output
    js = json.loads(run("lint", str(loud), "--format", "json").output)
    assert {f["check"] for f in js} >= {"credential-leak", "request-received-kept"}


def test_simulate_events_and_db(recommended: Path, tmp_path: Path) -> None:
    res = run("simulate", str(recommended), "--events", str(MICROK8S))
    assert res.exit_code == 0
    assert "2971 recorded events" in res.output and "per rule" in res.output
    db = tmp_path / "k.duckdb"
    store = DuckDBStore.open(db)
    store.ingest_events(orjson.loads(line) for line in MICROK8S.read_bytes().splitlines())
    store.close()
    js = json.loads(run("simulate", str(recommended), "--db", str(db), "--format", "json").output)
    from_files = json.loads(
        run("simulate", str(recommended), "--events", str(MICROK8S), "--format", "json").output
    )
    # the store keeps each event re-serialised (and redacted), so byte counts differ slightly
    for part in ("recorded", "kept"):
        a, b = js["total"][part], from_files["total"][part]
        assert a["events"] == b["events"]
        assert abs(a["bytes"] - b["bytes"]) < 0.01 * b["bytes"]
    assert js["total"]["kept"]["events"] < js["total"]["recorded"]["events"]
    assert run("simulate", str(recommended)).exit_code == 1


def test_diff(recommended: Path, tmp_path: Path) -> None:
    loud = tmp_path / "loud.yaml"
    loud.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n")
    res = run("diff", str(recommended), str(loud), "--events", str(MICROK8S))
    assert res.exit_code == 0 and "-> RequestResponse (rule 0; omit -)" in res.output
    probes = run("diff", str(recommended), str(loud))
    assert "probe requests" in probes.output
    same = run("diff", str(recommended), str(recommended))
    assert "no probe requests change" in same.output


MANIFEST = """\
apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver, namespace: kube-system}
spec:
  containers:
  - name: kube-apiserver
    command: [kube-apiserver, --advertise-address=10.0.0.1, --audit-log-maxage=30]
    volumeMounts:
    - {name: k8s-certs, mountPath: /etc/kubernetes/pki, readOnly: true}
  volumes:
  - {name: k8s-certs, hostPath: {path: /etc/kubernetes/pki, type: DirectoryOrCreate}}
"""


def test_apiserver_flags_and_manifest_patch(tmp_path: Path) -> None:
    res = run("apiserver", "--webhook-url", "https://kaudit.example:8443/audit")
    assert res.exit_code == 0
    for flag in (
        "--audit-policy-file=/etc/kubernetes/audit-policy.yml",
        "--audit-log-path=/var/log/kubernetes/kubernetes.audit",
        "--audit-log-maxsize=100",
        "--audit-log-maxbackup=10",
        "--audit-log-maxage=7",
        "--audit-webhook-config-file=",
    ):
        assert flag in res.output
    assert "server: https://kaudit.example:8443/audit" in res.output
    m = tmp_path / "kube-apiserver.yaml"
    m.write_text(MANIFEST)
    assert run("apiserver", "--manifest", str(m), "--write").exit_code == 0
    again = run("apiserver", "--manifest", str(m))  # idempotent
    doc = yaml.safe_load(again.output)
    c = doc["spec"]["containers"][0]
    assert c["command"][:2] == ["kube-apiserver", "--advertise-address=10.0.0.1"]
    assert [a for a in c["command"] if a.startswith("--audit-log-maxage")] == [
        "--audit-log-maxage=7"
    ]
    assert [v["name"] for v in c["volumeMounts"]] == [
        "k8s-certs", "kaudit-audit-policy", "kaudit-audit-log",
    ]  # fmt: skip
    vols = {v["name"]: v["hostPath"] for v in doc["spec"]["volumes"]}
    assert vols["kaudit-audit-policy"] == {
        "path": "/etc/kubernetes/audit-policy.yml",
        "type": "File",
    }
    assert (tmp_path / "kube-apiserver.yaml.bak").read_text() == MANIFEST
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\n")
    assert run("apiserver", "--manifest", str(bad)).exit_code == 1
