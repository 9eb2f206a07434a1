"""`vmimage image import|export` (over the native API) and `vmimage admin bucket ...` (local
database): images from and to the object storage's granted buckets."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from vmimage.cli.client import image
from vmimage.cli.inventory import V1, _submitted
from vmimage.cli.local import local_settings

if TYPE_CHECKING:
    from vmimage.bootstrap import Container

bucket_cmd = typer.Typer(help="Buckets of the object storage granted to projects (import sources, "
                              "export targets)", no_args_is_help=True)


@image.command("import")
def image_import(ctx: typer.Context, name: str = typer.Option(..., "--name"),
                 bucket: str = typer.Option(..., "--bucket"), key: str = typer.Option(..., "--key"),
                 disk_format: str = typer.Option(None, "--disk-format", help="the content's if omitted"),
                 os_version: str = typer.Option(None, "--os-version"),
                 min_disk: int = typer.Option(None, "--min-disk", help="GB"),
                 store: str = typer.Option(None, "--store"),
                 wait: bool = typer.Option(False, "--wait", help="wait for the job and print it")) -> None:
    """Make an image from an object in a bucket granted to your project."""
    body = {"name": name, "bucket": bucket, "key": key, "disk_format": disk_format, "os_version": os_version,
            "min_disk": min_disk, "store": store}
    session = ctx.obj()
    resp = session.call("POST", f"{V1}/images/import", json={k: v for k, v in body.items() if v is not None})
    _submitted(session, resp.json()["job"], wait)


@image.command("export")
def image_export(ctx: typer.Context, image_id: str, bucket: str = typer.Option(..., "--bucket"),
                 key: str = typer.Option(..., "--key"),
                 disk_format: str = typer.Option(None, "--disk-format", help="convert to this format"),
                 wait: bool = typer.Option(False, "--wait", help="wait for the job and print it")) -> None:
    """Write an image's data as an object into a bucket granted to your project."""
    body = {"bucket": bucket, "key": key}
    if disk_format:
        body["disk_format"] = disk_format
    session = ctx.obj()
    _submitted(session, session.call("POST", f"{V1}/images/{image_id}/export", json=body).json()["job"], wait)


def _container(ctx: typer.Context) -> Container:
    from vmimage.bootstrap import build
    return build(local_settings(ctx.obj))


def _project_id(container: Container, project: str) -> str:
    from vmimage.core.errors import NotFound
    found = container.identity.find_project(project)
    if found is None:
        raise NotFound(f"Project '{project}' not found")
    return found.id


def _grant(g) -> dict:
    return {"bucket": g.bucket, "project_id": g.project_id,
            "created_at": g.created_at.isoformat() if g.created_at else None}


@bucket_cmd.command("grant")
def bucket_grant(ctx: typer.Context, bucket: str, project: str = typer.Option(..., "--project",
                                                                              help="name or id")) -> None:
    from vmimage.core.services.buckets import grant_bucket
    container = _container(ctx)
    try:
        typer.echo(json.dumps(_grant(grant_bucket(container.deps, bucket, _project_id(container, project)))))
    finally:
        container.close()


@bucket_cmd.command("revoke")
def bucket_revoke(ctx: typer.Context, bucket: str, project: str = typer.Option(..., "--project",
                                                                               help="name or id")) -> None:
    from vmimage.core.services.buckets import revoke_bucket
    container = _container(ctx)
    try:
        project_id = _project_id(container, project)
        revoke_bucket(container.deps, bucket, project_id)
        typer.echo(json.dumps({"bucket": bucket, "project_id": project_id, "revoked": True}))
    finally:
        container.close()


@bucket_cmd.command("list")
def bucket_list(ctx: typer.Context, project: str = typer.Option(None, "--project", help="name or id")) -> None:
    from vmimage.core.services.buckets import list_bucket_grants
    container = _container(ctx)
    try:
        project_id = _project_id(container, project) if project else None
        typer.echo(json.dumps([_grant(g) for g in list_bucket_grants(container.deps, project_id)]))
    finally:
        container.close()



