"""`kaudit serve`, `kaudit token`, `kaudit webhook-config` and `kaudit certs`."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from typing import Any

import click
import yaml

from kaudit.errors import ConfigError

_DEFAULT_CONFIG = "kaudit.yaml"


def _config(config: str | None, db: str | None) -> Any:
    """The serve configuration: --config, else ./kaudit.yaml if present, else the defaults;
    --db overrides the store path."""
    import dataclasses

    from kaudit.serve.config import load_config

    path = config
    if path is None and Path(_DEFAULT_CONFIG).is_file():
        path = _DEFAULT_CONFIG
    cfg = load_config(path)
    if db is not None:
        cfg = dataclasses.replace(cfg, db=db)
    return cfg


config_option = click.option(
    "--config",
    "config",
    default=None,
    type=click.Path(dir_okay=False),
    help=f"YAML configuration (default: ./{_DEFAULT_CONFIG} if present, else built-in defaults).",
)
db_option = click.option(
    "--db", "db", default=None, type=click.Path(dir_okay=False), help="Override the store path."
)


@click.command("serve")
@config_option
@db_option
@click.option("--host", default=None, help="Override the listen address.")
@click.option("--port", default=None, type=int, help="Override the listen port.")
@click.option("--print-config", is_flag=True, help="Print the documented default configuration.")
def serve_cmd(
    config: str | None, db: str | None, host: str | None, port: int | None, print_config: bool
) -> None:
    """Run the audit webhook receiver, the log followers, the HTTP API and /metrics.

    \b
    kaudit serve                       # defaults: ./kaudit-data, http://127.0.0.1:8700
    kaudit serve --config kaudit.yaml  # TLS, followers, limits (see --print-config)
    """
    import dataclasses

    from kaudit.serve.config import EXAMPLE_CONFIG

    if print_config:
        click.echo(EXAMPLE_CONFIG, nl=False)
        return
    cfg = _config(config, db)
    if host is not None:
        cfg = dataclasses.replace(cfg, host=host)
    if port is not None:
        cfg = dataclasses.replace(cfg, port=port)
    from kaudit.serve.client import remote_for

    if remote_for(cfg) is not None:
        raise ConfigError(f"a kaudit server already runs on {cfg.db} (see its serve.json)")
    from kaudit.serve.server import serve

    serve(cfg)


# --- tokens ----------------------------------------------------------------------------------
@click.group("token")
def token_cmd() -> None:
    """API tokens (viewer/admin) and ingest credentials, stored hashed next to the DB."""


def _tokens(config: str | None, db: str | None) -> Any:
    from kaudit.serve.auth import TokenStore, tokens_path

    return TokenStore(tokens_path(_config(config, db).data_dir))


@token_cmd.command("create")
@config_option
@db_option
@click.option(
    "--role",
    type=click.Choice(["viewer", "admin", "ingest"]),
    required=True,
    help="viewer: read the API; admin: also prune; ingest: send events (needs --cluster).",
)
@click.option("--cluster", default=None, help="Cluster of an ingest credential.")
@click.option("--name", default="", help="A note on who holds it.")
def token_create(
    config: str | None, db: str | None, role: str, cluster: str | None, name: str
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    store = _tokens(config, db)
    if role == "ingest":
        token, cred = store.create("ingest", "ingest", name, cluster)
    else:
        if cluster:
            raise ConfigError("--cluster is for ingest credentials")
        token, cred = store.create("api", role, name)
    click.echo(token)
    click.echo(f"created {cred.kind} credential {cred.id} ({cred.role})", err=True)


@token_cmd.command("list")
@config_option
@db_option
def token_list(config: str | None, db: str | None) -> None:
    """The credentials (ids, roles, clusters; never the tokens)."""
    for c in _tokens(config, db).list():
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.created))
        click.echo(f"{c.id}  {c.kind:6}  {c.role:7}  {c.cluster or '-':12}  {created}  {c.name}")


@token_cmd.command("revoke")
@config_option
@db_option
@click.argument("ident")
def token_revoke(config: str | None, db: str | None, ident: str) -> None:
    """Revoke a credential by id (a running server stops accepting it at once)."""
    if not _tokens(config, db).revoke(ident):
        raise ConfigError(f"no credential with id {ident!r} (see kaudit token list)")
    click.echo(f"revoked {ident}")


# --- webhook-config --------------------------------------------------------------------------
@click.command("webhook-config")
@config_option
@db_option
@click.option("--server", "server", default=None, help="URL the apiserver posts to.")
@click.option("--cluster", required=True, help="Name the cluster's events are stored under.")
@click.option("--ca", "ca", default=None, type=click.Path(dir_okay=False), help="CA of kaudit.")
@click.option(
    "--client-cert",
    "certs_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Authenticate by a client certificate signed by the CA in this directory (mTLS).",
)
@click.option("--out", "out", default="-", type=click.Path(dir_okay=False, allow_dash=True))
def webhook_config_cmd(
    config: str | None,
    db: str | None,
    server: str | None,
    cluster: str,
    ca: str | None,
    certs_dir: str | None,
    out: str,
) -> None:
    """Create an ingest credential and write the apiserver's --audit-webhook-config-file."""
    cfg = _config(config, db)
    url = (server or cfg.url).rstrip("/")
    if not url.split("://", 1)[-1].count("/"):
        url += cfg.webhook.paths[0]
    ca = (
        ca
        or cfg.tls.client_ca
        or (str(Path(cfg.tls.cert).parent / "ca.pem") if cfg.tls.cert else None)
    )
    cluster_entry: dict[str, Any] = {"server": url}
    if url.startswith("https://") and ca and Path(ca).is_file():
        cluster_entry["certificate-authority-data"] = base64.b64encode(
            Path(ca).read_bytes()
        ).decode()
    user: dict[str, Any] = {}
    if certs_dir:
        from kaudit.serve.certs import client_cert

        cert, key = client_cert(Path(certs_dir), cluster)
        user["client-certificate-data"] = base64.b64encode(cert).decode()
        user["client-key-data"] = base64.b64encode(key).decode()
    else:
        from kaudit.serve.auth import TokenStore, tokens_path

        token, _ = TokenStore(tokens_path(cfg.data_dir)).create(
            "ingest", "ingest", f"webhook-config {cluster}", cluster
        )
        user["token"] = token
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kaudit", "cluster": cluster_entry}],
        "users": [{"name": f"kaudit-{cluster}", "user": user}],
        "contexts": [
            {"name": "kaudit", "context": {"cluster": "kaudit", "user": f"kaudit-{cluster}"}}
        ],
        "current-context": "kaudit",
        "preferences": {},
    }
    text = "# kube-apiserver --audit-webhook-config-file for kaudit (holds a secret)\n"
    text += yaml.safe_dump(doc, sort_keys=False)
    if out == "-":
        click.echo(text, nl=False)
    else:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        click.echo(f"wrote {out}: pass it to kube-apiserver --audit-webhook-config-file", err=True)


# --- certs -----------------------------------------------------------------------------------
@click.group("certs")
def certs_cmd() -> None:
    """A private CA and a server certificate for kaudit's TLS (and client certs for mTLS)."""


@certs_cmd.command("create")
@click.option(
    "--dir",
    "directory",
    default="./kaudit-data/tls",
    show_default=True,
    type=click.Path(file_okay=False),
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    default=("localhost", "127.0.0.1"),
    show_default=True,
    help="DNS name or IP the server certificate is for (repeat).",
)
def certs_create(directory: str, hosts: tuple[str, ...]) -> None:
    """Write ca.pem, ca-key.pem, server.pem, server-key.pem."""
    from kaudit.serve.certs import create

    files = create(Path(directory), list(hosts))
    click.echo(f"wrote {files.ca}, {files.cert}, {files.key}")
    click.echo("in kaudit.yaml:")
    click.echo(f"tls:\n  cert: {files.cert}\n  key: {files.key}\n  client_ca: {files.ca}")


COMMANDS: dict[str, click.Command] = {
    "serve": serve_cmd,
    "token": token_cmd,
    "webhook-config": webhook_config_cmd,
    "certs": certs_cmd,
}
