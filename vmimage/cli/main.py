"""The vmimage command: serve, administer, and talk to a running service."""

from __future__ import annotations

import json
import os
import secrets
import signal
from pathlib import Path
from typing import Any

import typer
import yaml

from vmimage.cli import audit as audit_cli
from vmimage.cli import buckets as buckets_cli
from vmimage.cli import client as client_cli
from vmimage.cli import inventory as inventory_cli
from vmimage.cli.local import local_settings
from vmimage.core.audit import cli_origin, set_origin
from vmimage.settings import Settings

app = typer.Typer(help="vmimage: a self-hosted cloud image service.", no_args_is_help=True)
admin = typer.Typer(cls=client_cli.GroupOptionsAnywhere,
                    help="Administer projects, users, access keys, quotas and guests (local database).",
                    no_args_is_help=True)
app.add_typer(admin, name="admin")
app.add_typer(client_cli.image, name="image")
for _name, _group in inventory_cli.GROUPS.items():
    app.add_typer(_group, name=_name)


def _admin_password(settings: Settings) -> tuple[str, bool]:
    """The admin password: the environment's, the saved one, or a new one (saved 0600)."""
    if settings.admin_password:
        return settings.admin_password, False
    path = settings.data_dir / "admin-password"
    if path.exists():
        return path.read_text().strip(), False
    password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password, True


def write_clouds_yaml(settings: Settings, password: str) -> Path:
    cloud = {"auth": {"auth_url": f"{settings.base_url}/identity/v3", "username": "admin",
                      "password": password, "project_name": "admin",
                      "user_domain_name": "Default", "project_domain_name": "Default"},
             "region_name": settings.regions[0], "identity_api_version": 3, "image_api_version": 2,
             "interface": "public"}
    path = settings.data_dir / "clouds.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump({"clouds": {"vmimage": cloud}}, f, sort_keys=False)
    return path


def _return_big_buffers_to_the_system() -> None:
    """glibc: allocations of 1 MiB and more (upload parts, request bodies) are mapped and
    unmapped on their own rather than carved from the heap or a thread's arena, where freed
    ones stay resident and fragment; at most two arenas. Elsewhere nothing changes."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_mmap_threshold, m_arena_max = -3, -8
    mallopt(m_mmap_threshold, 1 << 20)
    mallopt(m_arena_max, 2)


@app.command()
def serve(host: str = typer.Option(None, help="Address to bind (default 127.0.0.1)"),
          port: int = typer.Option(None, help="Port (default 9292)"),
          data_dir: Path = typer.Option(None, "--data-dir", help="Data directory (default ./data)"),
          workers: int = typer.Option(None, "--workers", min=1,
                                      help="Serving processes (more than 1 needs PostgreSQL; default "
                                           "VMIMAGE_WORKERS or 1)")) -> None:
    """Run the service (SQLite + local files by default)."""
    import uvicorn

    from vmimage.adapters.db.engine import startup_lock
    from vmimage.adapters.metrics.prometheus import share_between_processes
    from vmimage.app import create_app
    from vmimage.bootstrap import build, recover_after_crash
    from vmimage.core.errors import VmImageError
    from vmimage.core.services.buckets import refuse_granted_store_buckets
    from vmimage.http_protocol import BoundedHttpToolsProtocol, limits
    from vmimage.logs import configure as configure_logs

    _return_big_buffers_to_the_system()
    os.umask(0o077)   # every file vmimage (and qemu-img, QEMU, SQLite) writes: 0600, every folder: 0700
    settings = local_settings(data_dir, host, port)
    try:
        configure_logs(settings.log_format)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if workers is not None:
        settings.workers = workers
    if settings.workers > 1 and not settings.db_url.startswith("postgresql"):
        typer.echo("--workers above 1 needs VMIMAGE_DATABASE_URL on PostgreSQL", err=True)
        raise typer.Exit(2)
    # Every serving process's metrics in files of their own, summed by whichever answers a scrape.
    share_between_processes(settings.data_dir / "metrics")
    container = build(settings)
    try:
        refuse_granted_store_buckets(container.deps)
    except VmImageError:
        container.close()
        raise
    recover_after_crash(container)
    password, new = _admin_password(settings)
    with startup_lock(container.engine):
        created = container.identity.bootstrap_admin(password)
    clouds = write_clouds_yaml(settings, password)
    if created and new:
        typer.echo(f"admin password (saved in {settings.data_dir / 'admin-password'}): {password}")
    typer.echo(f"clouds.yaml written to {clouds}; use: OS_CLIENT_CONFIG_FILE={clouds} "
               f"openstack --os-cloud vmimage image list")
    # Request heads and connections bounded (vmimage/http_protocol.py); no WebSocket route exists.
    connections = limits().max_connections
    if 0 <= connections < settings.max_connections:
        typer.echo(f"serving at most {connections} connections per process (VMIMAGE_MAX_CONNECTIONS is "
                   f"{settings.max_connections}): the open-file limit allows no more", err=True)
    # Logging is ours (vmimage/logs.py): uvicorn's lines reach the same handler, its access log
    # stays off (each request has one line of ours). SIGTERM: uvicorn stops accepting and waits
    # up to the grace for requests in flight (the supervisor of --workers N forwards it).
    options: dict[str, Any] = dict(host=settings.host, port=settings.port, log_config=None,
                                   log_level="info" if settings.log_format == "json" else "warning",
                                   access_log=False, http=BoundedHttpToolsProtocol, ws="none", loop="uvloop",
                                   timeout_graceful_shutdown=settings.shutdown_grace_seconds)
    if settings.workers == 1:
        # uvicorn raises the signal that stopped it again once done, to its handler before it:
        # this one lets the clean stop end with status 0 rather than die of SIGTERM.
        signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
        uvicorn.run(create_app(container), **options)
        return
    # Each worker process builds its own container from the environment (the schema, seed
    # data and admin are done above, once).
    container.close()
    os.environ.update({"VMIMAGE_DATA_DIR": str(settings.data_dir), "VMIMAGE_HOST": settings.host,
                       "VMIMAGE_PORT": str(settings.port)})
    uvicorn.run("vmimage.app:app_from_environment", factory=True, workers=settings.workers, **options)


def _identity(data_dir: Path | None):
    from vmimage.bootstrap import build
    return build(local_settings(data_dir)).identity


DataDir = typer.Option(None, "--data-dir", help="Data directory (default ./data)")
project_cmd = typer.Typer(help="Projects", no_args_is_help=True)
user_cmd = typer.Typer(help="Users", no_args_is_help=True)
key_cmd = typer.Typer(help="Access keys (AK/SK) for the Huawei and JD signatures", no_args_is_help=True)
quota_cmd = typer.Typer(help="Per-project quotas", no_args_is_help=True)
server_cmd = typer.Typer(help="The servers' QEMU guests of this data directory", no_args_is_help=True)
role_cmd = typer.Typer(help="Role assignments: a user may hold roles in several projects", no_args_is_help=True)
admin.add_typer(project_cmd, name="project")
admin.add_typer(user_cmd, name="user")
admin.add_typer(key_cmd, name="access-key")
admin.add_typer(quota_cmd, name="quota")
admin.add_typer(buckets_cli.bucket_cmd, name="bucket")
admin.add_typer(server_cmd, name="server")
admin.add_typer(role_cmd, name="role")
admin.add_typer(audit_cli.audit_cmd, name="audit")


@admin.callback()
def admin_options(ctx: typer.Context, data_dir: Path = DataDir) -> None:
    os.umask(0o077)   # the database and key file it may create are private, as under serve
    ctx.obj = data_dir
    set_origin(cli_origin())     # the audit trail's who and where: the local OS user, `cli`


@project_cmd.command("create")
def project_create(ctx: typer.Context, name: str,
                   region: str = typer.Option(None, "--region",
                                              help="where the project acts (Huawei IMS); default: the default region")
                   ) -> None:
    regions = local_settings(ctx.obj).regions
    if region is not None and region not in regions:
        raise typer.BadParameter(f"unknown region '{region}' (VMIMAGE_REGIONS: {', '.join(regions)})",
                                 param_hint="--region")
    p = _identity(ctx.obj).create_project(name, region)
    typer.echo(json.dumps({"id": p.id, "name": p.name, "region": p.region or regions[0]}))


@project_cmd.command("list")
def project_list(ctx: typer.Context) -> None:
    default = local_settings(ctx.obj).regions[0]
    typer.echo(json.dumps([{"id": p.id, "name": p.name, "region": p.region or default}
                           for p in _identity(ctx.obj).list_projects()]))


@user_cmd.command("create")
def user_create(ctx: typer.Context, name: str, project: str = typer.Option(..., "--project"),
                role: str = typer.Option("member", "--role", help="member | reader | admin | service"),
                password: str = typer.Option(..., "--password")) -> None:
    u = _identity(ctx.obj).create_user(name, password, project, role)
    typer.echo(json.dumps({"id": u.id, "name": u.name, "project": project, "role": role}))


@user_cmd.command("disable")
def user_disable(ctx: typer.Context, name: str) -> None:
    """Refuse the user's logins and access keys and revoke their tokens, in every process at once."""
    u, revoked = _identity(ctx.obj).set_user_enabled(name, False)
    typer.echo(json.dumps({"id": u.id, "name": u.name, "enabled": False, "tokens_revoked": revoked}))


@user_cmd.command("enable")
def user_enable(ctx: typer.Context, name: str) -> None:
    """Let the user log in and use their access keys again (revoked tokens stay revoked)."""
    u, _ = _identity(ctx.obj).set_user_enabled(name, True)
    typer.echo(json.dumps({"id": u.id, "name": u.name, "enabled": True}))


@user_cmd.command("delete")
def user_delete(ctx: typer.Context, name: str) -> None:
    """Delete the user with their role assignments, access keys and tokens."""
    u, keys, tokens = _identity(ctx.obj).delete_user(name)
    typer.echo(json.dumps({"id": u.id, "name": u.name, "deleted": True, "access_keys_deleted": keys,
                           "tokens_deleted": tokens}))


RoleUser = typer.Option(..., "--user", help="user name or id")
RoleProject = typer.Option(..., "--project", help="project name or id")
RoleName = typer.Option(..., "--role", help="member | reader | admin | service")


@role_cmd.command("grant")
def role_grant(ctx: typer.Context, user: str = RoleUser, project: str = RoleProject, role: str = RoleName) -> None:
    """The user may scope tokens to the project, and its access keys act in it when a request names it."""
    u, p = _identity(ctx.obj).grant_role(user, project, role)
    typer.echo(json.dumps({"user_id": u.id, "user": u.name, "project_id": p.id, "project": p.name, "role": role}))


@role_cmd.command("revoke")
def role_revoke(ctx: typer.Context, user: str = RoleUser, project: str = RoleProject, role: str = RoleName) -> None:
    """Effective at once in every process."""
    u, p = _identity(ctx.obj).revoke_role(user, project, role)
    typer.echo(json.dumps({"user_id": u.id, "user": u.name, "project_id": p.id, "project": p.name, "role": role,
                           "revoked": True}))


@role_cmd.command("list")
def role_list(ctx: typer.Context, user: str = typer.Option(None, "--user", help="one user's"),
              project: str = typer.Option(None, "--project", help="one project's")) -> None:
    typer.echo(json.dumps([{"user_id": u.id, "user": u.name, "project_id": p.id, "project": p.name, "role": r}
                           for u, p, r in _identity(ctx.obj).list_roles(user, project)]))


@key_cmd.command("create")
def access_key_create(ctx: typer.Context, user: str = typer.Option(..., "--user")) -> None:
    k = _identity(ctx.obj).create_access_key(user)
    typer.echo(json.dumps({"access_key": k.access_key, "secret_key": k.secret, "user_id": k.user_id,
                           "project_id": k.project_id}))


@key_cmd.command("list")
def access_key_list(ctx: typer.Context, user: str = typer.Option(None, "--user", help="one user's keys")) -> None:
    """Every access key (never its secret)."""
    typer.echo(json.dumps([
        {"access_key": k.access_key, "user_id": k.user_id, "user_name": u.name, "project_id": k.project_id,
         "enabled": k.enabled, "created_at": k.created_at.isoformat() if k.created_at else None}
        for k, u in _identity(ctx.obj).list_access_keys(user)]))


@key_cmd.command("disable")
def access_key_disable(ctx: typer.Context, access_key: str) -> None:
    """Refuse requests signed with the key, from its next one on, in every process."""
    k = _identity(ctx.obj).set_access_key_enabled(access_key, False)
    typer.echo(json.dumps({"access_key": k.access_key, "user_id": k.user_id, "enabled": False}))


@key_cmd.command("enable")
def access_key_enable(ctx: typer.Context, access_key: str) -> None:
    k = _identity(ctx.obj).set_access_key_enabled(access_key, True)
    typer.echo(json.dumps({"access_key": k.access_key, "user_id": k.user_id, "enabled": True}))


@key_cmd.command("delete")
def access_key_delete(ctx: typer.Context, access_key: str) -> None:
    k = _identity(ctx.obj).delete_access_key(access_key)
    typer.echo(json.dumps({"access_key": k.access_key, "user_id": k.user_id, "deleted": True}))


@quota_cmd.command("set")
def quota_set(ctx: typer.Context, project: str = typer.Option(..., "--project"),
              images: int = typer.Option(None, help="image count (-1 unlimited)"),
              bytes_: int = typer.Option(None, "--bytes", help="total image bytes (-1 unlimited)")) -> None:
    identity = _identity(ctx.obj)
    if images is not None:
        identity.set_quota(project, "image_count", images)
    if bytes_ is not None:
        identity.set_quota(project, "image_bytes", bytes_)
    typer.echo(json.dumps({"project": project, "image_count": images, "image_bytes": bytes_}))


@server_cmd.command("stop-all")
def server_stop_all(ctx: typer.Context) -> None:
    """Stop every guest of the data directory (they outlive `vmimage serve` by design), recorded as
    stopped; run it after stopping the service, before a data directory is retired."""
    from vmimage.bootstrap import build
    from vmimage.core.services.servers import stop_all_servers

    container = build(local_settings(ctx.obj))
    try:
        stopped = stop_all_servers(container.deps)
    finally:
        container.close()
    typer.echo(json.dumps({"stopped": stopped}))


def main() -> None:
    from vmimage.core.errors import VmImageError
    try:
        app()
    except VmImageError as exc:  # a refusal, not a crash: one line, non-zero exit
        typer.echo(f"error ({exc.code}): {exc.message}", err=True)
        raise SystemExit(1) from None
