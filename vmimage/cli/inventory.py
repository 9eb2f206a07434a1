"""`vmimage server|volume|snapshot|job ...`: the native API (/vmimage/v1) over HTTP.

Every group shares the connection options, Session and error handling of `vmimage image`
(vmimage/cli/client.py): a refusal prints one line on stderr and exits 1.
"""

from __future__ import annotations

import enum
import json
import time
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn
from rich.table import Table

from vmimage.cli.client import GroupOptionsAnywhere, Session, connect, console, print_table
from vmimage.core.inventory import VOLUME_TYPES as CORE_VOLUME_TYPES
from vmimage.core.inventory import DiskCategory

V1 = "/vmimage/v1"
POLL_SECONDS = 0.3
DONE = ("SUCCESS", "FAIL")


class ImageKind(enum.StrEnum):
    system = "system"
    whole = "whole"


# Choices come from the core's own vocabularies (DiskCategory, VOLUME_TYPES), so the CLI
# cannot drift from them.
VOLUME_TYPES = tuple(CORE_VOLUME_TYPES)


def _volume_type(value: str) -> str:
    if value not in VOLUME_TYPES:
        raise typer.BadParameter(f"'{value}' is not one of {', '.join(VOLUME_TYPES)}")
    return value

server = typer.Typer(cls=GroupOptionsAnywhere, help="Servers on a running vmimage (native API).",
                     no_args_is_help=True)
volume = typer.Typer(cls=GroupOptionsAnywhere, help="Volumes (cloud disks) on a running vmimage (native API).",
                     no_args_is_help=True)
snapshot = typer.Typer(cls=GroupOptionsAnywhere, help="Volume snapshots on a running vmimage (native API).",
                       no_args_is_help=True)
job = typer.Typer(cls=GroupOptionsAnywhere, help="Asynchronous jobs (images made from servers and volumes).",
                  no_args_is_help=True)
for _group in (server, volume, snapshot, job):
    _group.callback()(connect)

GROUPS = {"server": server, "volume": volume, "snapshot": snapshot, "job": job}


def _session(ctx: typer.Context) -> Session:
    return ctx.obj()


def _echo(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2))


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _table(columns: tuple[str, ...], rows: list[tuple]) -> None:
    table = Table(*columns)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    print_table(table)


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise typer.BadParameter(f"{what}: '{text}' is not a whole number of GB") from None


# --- jobs ---------------------------------------------------------------------------------

def wait_for_job(session: Session, job_id: str) -> dict:
    """Poll the job with a progress bar; print it when done; exit 1 if it failed."""
    with Progress("[progress.description]{task.description}", BarColumn(), TaskProgressColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"job {job_id}", total=100)
        while True:
            current = session.call("GET", f"{V1}/jobs/{job_id}").json()["job"]
            progress.update(task, completed=current["progress"] or 0,
                            description=f"job {job_id} {current['status']}")
            if current["status"] in DONE:
                break
            time.sleep(POLL_SECONDS)
    _echo(current)
    if current["status"] == "FAIL":
        reason = " ".join(str(current.get("fail_reason")).split())
        console.print(f"[red]job {job_id} failed[/red] ({escape(str(current.get('error_code')))}): "
                      f"{escape(reason)}", soft_wrap=True)
        raise typer.Exit(1)
    return current


def _submitted(session: Session, resp_job: dict, wait: bool) -> None:
    if wait:
        wait_for_job(session, resp_job["id"])
    else:
        _echo(resp_job)


@job.command("show")
def job_show(ctx: typer.Context, job_id: str) -> None:
    """Show a job (status, progress, the images it made)."""
    _echo(_session(ctx).call("GET", f"{V1}/jobs/{job_id}").json()["job"])


@job.command("list")
def job_list(ctx: typer.Context) -> None:
    """The latest jobs (newest first)."""
    jobs = _session(ctx).call("GET", f"{V1}/jobs").json()["jobs"]
    _table(("id", "kind", "status", "progress", "images", "error", "created_at"),
           [(j["id"], j["kind"], j["status"], f"{j['progress']}%",
             " ".join((j.get("entities") or {}).get("image_ids", [])), j.get("error_code"), j["created_at"])
            for j in jobs])


@job.command("wait")
def job_wait(ctx: typer.Context, job_id: str) -> None:
    """Wait for a job to end; exit 1 if it failed."""
    wait_for_job(_session(ctx), job_id)


# --- servers ------------------------------------------------------------------------------

def _data_disk(text: str) -> dict:
    """vdb:SIZE[:TYPE]"""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise typer.BadParameter(f"'{text}': expected DEVICE:SIZE_GB[:TYPE]", param_hint="--data-disk")
    spec: dict[str, Any] = {"device": parts[0], "size_gb": _int(parts[1], parts[0])}
    if len(parts) == 3:
        if parts[2] not in VOLUME_TYPES:
            raise typer.BadParameter(f"'{parts[2]}': the type is one of {', '.join(VOLUME_TYPES)}",
                                     param_hint="--data-disk")
        spec["type"] = parts[2]
    return spec


def _pair(text: str, option: str) -> tuple[str, str]:
    device, sep, rest = text.partition(":")
    if not sep or not device or not rest:
        raise typer.BadParameter(f"'{text}': expected DEVICE:VALUE", param_hint=option)
    return device, rest


def _image_disks(exclude: list[str], resize: list[str], insert: list[str]) -> list[dict]:
    """The whole-machine plan's data_disks: excluded, resized and inserted devices."""
    disks: list[dict] = [{"device": d, "exclude": True} for d in exclude]
    for text in resize:
        device, gb = _pair(text, "--resize")
        disks.append({"device": device, "size_gb": _int(gb, device)})
    for text in insert:
        device, rest = _pair(text, "--insert")
        source, _, gb = rest.partition(":")
        if source == "empty":
            if not gb:
                raise typer.BadParameter(f"'{text}': an empty disk needs a size, DEVICE:empty:GB",
                                         param_hint="--insert")
            disks.append({"device": device, "size_gb": _int(gb, device)})
        else:   # DEVICE:SNAPSHOT[:GB]
            spec: dict[str, Any] = {"device": device, "snapshot_id": source}
            if gb:
                spec["size_gb"] = _int(gb, device)
            disks.append(spec)
    return disks


@server.command("create")
def server_create(ctx: typer.Context, name: str = typer.Option(..., "--name"),
                  image_id: str = typer.Option(..., "--image", help="the image of the system disk"),
                  system_size: int = typer.Option(None, "--system-size", min=1,
                                                  help="system disk GB (default: the image's size)"),
                  category: DiskCategory = typer.Option(DiskCategory.LOCAL, "--category",
                                               help="the system disk's category"),
                  data_disks: list[str] = typer.Option([], "--data-disk", metavar="DEV:GB[:TYPE]",
                                                       help="an empty data disk, e.g. vdb:10:ssd.io1 (repeatable)"),
                  start: bool = typer.Option(True, "--start/--no-start", help="boot it once created")) -> None:
    """Create a server from an image, with optional empty data disks."""
    system: dict[str, Any] = {"category": category.value}
    if system_size is not None:
        system["size_gb"] = system_size
    body = {"name": name, "image_id": image_id, "system_disk": system,
            "data_disks": [_data_disk(d) for d in data_disks], "start": start}
    _echo(_session(ctx).call("POST", f"{V1}/servers", json=body).json()["server"])


@server.command("list")
def server_list(ctx: typer.Context) -> None:
    """List servers."""
    servers = _session(ctx).call("GET", f"{V1}/servers").json()["servers"]
    _table(("id", "name", "status", "task", "image_id", "system", "data disks"),
           [(s["id"], s["name"], s["status"], s["task"], s["image_id"],
             f"{s['system_disk']['size_gb']}G" if s["system_disk"] else "",
             " ".join(f"{d['device']}:{d['size_gb']}G" for d in s["data_disks"])) for s in servers])


@server.command("show")
def server_show(ctx: typer.Context, server_id: str) -> None:
    """Show a server and its disks."""
    _echo(_session(ctx).call("GET", f"{V1}/servers/{server_id}").json()["server"])


@server.command("delete")
def server_delete(ctx: typer.Context, server_id: str) -> None:
    """Stop and delete a server, its system disk and local disks (cloud data disks stay)."""
    _session(ctx).call("DELETE", f"{V1}/servers/{server_id}")
    typer.echo(f"deleted {server_id}")


def _action(ctx: typer.Context, server_id: str, action: str) -> None:
    _echo(_session(ctx).call("POST", f"{V1}/servers/{server_id}/actions/{action}").json()["server"])


@server.command("start")
def server_start(ctx: typer.Context, server_id: str) -> None:
    """Boot a stopped server."""
    _action(ctx, server_id, "start")


@server.command("stop")
def server_stop(ctx: typer.Context, server_id: str) -> None:
    """Stop a running server."""
    _action(ctx, server_id, "stop")


@server.command("reboot")
def server_reboot(ctx: typer.Context, server_id: str) -> None:
    """Reboot a running server."""
    _action(ctx, server_id, "reboot")


@server.command("image")
def server_image(ctx: typer.Context, server_id: str, name: str = typer.Option(..., "--name"),
                 kind: ImageKind = typer.Option(ImageKind.system, "--kind",
                                          help="the system disk only, or the whole machine"),
                 description: str = typer.Option(None, "--description"),
                 exclude: list[str] = typer.Option([], "--exclude", metavar="DEV",
                                                   help="leave an attached data disk out (repeatable)"),
                 resize: list[str] = typer.Option([], "--resize", metavar="DEV:GB",
                                                  help="grow an attached data disk's image (repeatable)"),
                 insert: list[str] = typer.Option([], "--insert", metavar="DEV:SNAP[:GB]|DEV:empty:GB",
                                                  help="add a disk from a snapshot, or empty (repeatable)"),
                 wait: bool = typer.Option(False, "--wait", help="wait for the job and print it")) -> None:
    """Make an image (system disk, or whole machine) from a server; a job does the copying."""
    disks = _image_disks(exclude, resize, insert)
    if disks and kind != ImageKind.whole:
        raise typer.BadParameter("--exclude, --resize and --insert need --kind whole", param_hint="--kind")
    body: dict[str, Any] = {"name": name, "kind": kind.value}
    if description is not None:
        body["description"] = description
    if disks:
        body["data_disks"] = disks
    session = _session(ctx)
    _submitted(session, session.call("POST", f"{V1}/servers/{server_id}/images", json=body).json()["job"], wait)


# --- volumes ------------------------------------------------------------------------------

@volume.command("create")
def volume_create(ctx: typer.Context,
                  size: int = typer.Option(None, "--size", min=1, help="GB (default: the snapshot's size)"),
                  type_: str = typer.Option("ssd.gp1", "--type", callback=_volume_type,
                                            help=f"one of {', '.join(VOLUME_TYPES)}"),
                  snapshot_id: str = typer.Option(None, "--snapshot", help="a snapshot to start from"),
                  name: str = typer.Option(None, "--name")) -> None:
    """Create a free cloud volume, empty or from a snapshot."""
    if size is None and snapshot_id is None:
        raise typer.BadParameter("give a size, or a snapshot to take it from", param_hint="--size")
    body: dict[str, Any] = {"type": type_}
    for key, value in (("size_gb", size), ("snapshot_id", snapshot_id), ("name", name)):
        if value is not None:
            body[key] = value
    _echo(_session(ctx).call("POST", f"{V1}/volumes", json=body).json()["volume"])


@volume.command("list")
def volume_list(ctx: typer.Context) -> None:
    """List volumes (system and data disks included)."""
    volumes = _session(ctx).call("GET", f"{V1}/volumes").json()["volumes"]
    _table(("id", "name", "size_gb", "type", "category", "status", "server_id", "device"),
           [(v["id"], v["name"], v["size_gb"], v["type"], v["category"], v["status"], v["server_id"],
             v["device"]) for v in volumes])


@volume.command("show")
def volume_show(ctx: typer.Context, volume_id: str) -> None:
    """Show a volume."""
    _echo(_session(ctx).call("GET", f"{V1}/volumes/{volume_id}").json()["volume"])


@volume.command("delete")
def volume_delete(ctx: typer.Context, volume_id: str) -> None:
    """Delete a free volume."""
    _session(ctx).call("DELETE", f"{V1}/volumes/{volume_id}")
    typer.echo(f"deleted {volume_id}")


@volume.command("attach")
def volume_attach(ctx: typer.Context, volume_id: str, server_id: str = typer.Option(..., "--server"),
                  device: str = typer.Option(None, "--device", help="vdb..vdbm (default: the first free)")) -> None:
    """Attach a volume to a stopped server."""
    body = {"server_id": server_id, **({"device": device} if device else {})}
    _echo(_session(ctx).call("POST", f"{V1}/volumes/{volume_id}/attach", json=body).json()["volume"])


@volume.command("detach")
def volume_detach(ctx: typer.Context, volume_id: str) -> None:
    """Detach a volume from its (stopped) server."""
    _echo(_session(ctx).call("POST", f"{V1}/volumes/{volume_id}/detach").json()["volume"])


@volume.command("image")
def volume_image(ctx: typer.Context, volume_id: str, name: str = typer.Option(..., "--name"),
                 description: str = typer.Option(None, "--description"),
                 wait: bool = typer.Option(False, "--wait", help="wait for the job and print it")) -> None:
    """Make a data-disk image from a volume; a job does the copying."""
    body = {"name": name, **({"description": description} if description is not None else {})}
    session = _session(ctx)
    _submitted(session, session.call("POST", f"{V1}/volumes/{volume_id}/images", json=body).json()["job"], wait)


# --- snapshots ----------------------------------------------------------------------------

@snapshot.command("create")
def snapshot_create(ctx: typer.Context, volume_id: str = typer.Option(..., "--volume"),
                    name: str = typer.Option(None, "--name")) -> None:
    """Snapshot a volume (live through QEMU when its server runs)."""
    body = {"volume_id": volume_id, **({"name": name} if name is not None else {})}
    _echo(_session(ctx).call("POST", f"{V1}/snapshots", json=body).json()["snapshot"])


@snapshot.command("list")
def snapshot_list(ctx: typer.Context) -> None:
    """List snapshots."""
    snapshots = _session(ctx).call("GET", f"{V1}/snapshots").json()["snapshots"]
    _table(("id", "name", "volume_id", "size_gb", "status", "created_at"),
           [(s["id"], s["name"], s["volume_id"], s["size_gb"], s["status"], s["created_at"]) for s in snapshots])


@snapshot.command("show")
def snapshot_show(ctx: typer.Context, snapshot_id: str) -> None:
    """Show a snapshot."""
    _echo(_session(ctx).call("GET", f"{V1}/snapshots/{snapshot_id}").json()["snapshot"])


@snapshot.command("delete")
def snapshot_delete(ctx: typer.Context, snapshot_id: str) -> None:
    """Delete a snapshot no volume is built on."""
    _session(ctx).call("DELETE", f"{V1}/snapshots/{snapshot_id}")
    typer.echo(f"deleted {snapshot_id}")
