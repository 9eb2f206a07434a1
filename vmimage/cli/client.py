"""`vmimage image ...`: talk to a running vmimage over HTTP (Keystone auth, Glance v2 API).

Session, the `connect` callback and the error handling here are shared by every command
group that talks to a server (see vmimage/cli/inventory.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from typer._click.core import Context   # typer (pinned) carries its own click
from typer._click.exceptions import UsageError
from typer.core import TyperGroup, TyperOption

from vmimage.core.formats import decide
from vmimage.imaging.inspector import OsloContentInspector



class GroupOptionsAnywhere(TyperGroup):
    """A command group whose own options may also follow the subcommand, as the `openstack` CLI
    takes `--os-*` anywhere: `vmimage image list --url U` is read as `vmimage image --url U list`.
    An option the subcommand has of its own keeps its place."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._own_options_first(ctx, args))

    def _own_options_first(self, ctx: Context, args: list[str]) -> list[str]:
        mine = _option_arity(self.params)
        at = 0                                  # the subcommand's name: after the group's own options
        while at < len(args) and args[at].startswith("-") and args[at] != "--":
            at += 2 if mine.get(args[at]) else 1
        command = self.get_command(ctx, args[at]) if at < len(args) else None
        if command is None:
            return args
        theirs = _option_arity(command.params)
        moved: list[str] = []
        rest: list[str] = []
        tail = iter(args[at + 1:])
        for arg in tail:
            if arg == "--":
                rest += [arg, *tail]
                break
            name = arg.split("=", 1)[0]
            takes_value = "=" not in arg
            if name in mine and name not in theirs:
                if not (takes_value and mine[name]):
                    moved.append(arg)
                    continue
                value = next(tail, None)
                if value is None:
                    raise UsageError(f"Option '{arg}' requires an argument.", ctx)
                moved += [arg, value]
                continue
            rest.append(arg)
            if takes_value and theirs.get(arg):     # a value that looks like an option stays a value
                rest.extend(islice(tail, 1))
        return [*args[:at], *moved, args[at], *rest]


def _option_arity(params: list) -> dict[str, bool]:
    """Each option name: whether it takes a value."""
    return {name: not (o.is_flag or o.count) for o in params if isinstance(o, TyperOption)
            for name in (*o.opts, *o.secondary_opts)}


image = typer.Typer(cls=GroupOptionsAnywhere, help="Images on a running vmimage (Glance v2 over HTTP).",
                    no_args_is_help=True)
console = Console(stderr=True)
_CHUNK = 1 << 20


class Session:
    def __init__(self, url: str, user: str, password: str, project: str) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=httpx.Timeout(60.0, read=None, write=None))
        resp = self.http.post(f"{self.url}/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "password": password, "domain": {"id": "default"}}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
        _check(resp)
        self.http.headers["X-Auth-Token"] = resp.headers["X-Subject-Token"]

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        return _check(self.http.request(method, f"{self.url}{path}", **kwargs))


def _error_text(resp: httpx.Response) -> str:
    """The message of an error body: Glance's and the native API's {"error": {...}}, or flat."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = err.get("code")
        message = err.get("message", resp.text)
        return f"({code}) {message}" if isinstance(code, str) else str(message)
    return str(body.get("message", resp.text)) if isinstance(body, dict) else resp.text


def _check(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 400:
        message = " ".join(_error_text(resp).split())   # one line, whatever the body holds
        console.print(f"[red]error {resp.status_code}[/red]: {escape(message)}", soft_wrap=True)
        raise typer.Exit(1)
    return resp


def print_table(table) -> None:
    """A table on stdout; piped, at its full width so that no cell (an id) is folded."""
    out = Console()
    if not out.is_terminal:
        full = Measurement.get(out, out.options.update(max_width=1 << 16), table).maximum
        out = Console(width=max(out.width, full))
    out.print(table)


def _default_password() -> str:
    if os.environ.get("VMIMAGE_PASSWORD"):
        return os.environ["VMIMAGE_PASSWORD"]
    saved = Path(os.environ.get("VMIMAGE_DATA_DIR", "data")) / "admin-password"
    return saved.read_text().strip() if saved.exists() else ""


def connect(ctx: typer.Context,
            url: str = typer.Option(lambda: os.environ.get("VMIMAGE_URL", "http://127.0.0.1:9292"), "--url"),
            user: str = typer.Option(lambda: os.environ.get("VMIMAGE_USER", "admin"), "--user"),
            password: str = typer.Option(_default_password, "--password"),
            project: str = typer.Option(lambda: os.environ.get("VMIMAGE_PROJECT", "admin"), "--project"),
            ) -> None:
    """Where the service is and who is calling (the options of every client command group)."""
    ctx.obj = lambda: Session(url, user, password, project)


image.callback()(connect)


def _progress() -> Progress:
    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                    TransferSpeedColumn(), console=console, transient=True)


def _detect_format(path: Path) -> str:
    inspector = OsloContentInspector()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK * 4):
            inspector.feed(chunk)
    report = inspector.report()
    # The same rules the service applies; refuse locally what the service would refuse.
    return decide(None, "bare", report, path.stat().st_size, enforce_match=False).detected


@image.command("create")
def create(ctx: typer.Context, file: Path = typer.Option(..., "--file", exists=True, dir_okay=False),
           name: str = typer.Option(..., "--name"),
           disk_format: str = typer.Option(None, "--disk-format", help="detected from the content if omitted"),
           container_format: str = typer.Option("bare", "--container-format"),
           visibility: str = typer.Option(None, "--visibility")) -> None:
    """Create an image and upload a file into it."""
    session = ctx.obj()
    fmt = disk_format or _detect_format(file)
    body = {"name": name, "disk_format": fmt, "container_format": container_format}
    if visibility:
        body["visibility"] = visibility
    created = session.call("POST", "/v2/images", json=body).json()
    size = file.stat().st_size
    with _progress() as progress:
        task = progress.add_task(f"uploading {file.name}", total=size)

        def chunks() -> Iterator[bytes]:
            with file.open("rb") as f:
                while chunk := f.read(_CHUNK):
                    progress.advance(task, len(chunk))
                    yield chunk
        session.call("PUT", f"/v2/images/{created['id']}/file", content=chunks(), headers={
            "Content-Type": "application/octet-stream", "x-openstack-image-size": str(size)})
    typer.echo(json.dumps(session.call("GET", f"/v2/images/{created['id']}").json(), indent=2))


@image.command("list")
def list_(ctx: typer.Context, limit: int = typer.Option(None, "--limit")) -> None:
    """List images (all pages)."""
    from rich.table import Table
    session = ctx.obj()
    table = Table("id", "name", "status", "disk_format", "size", "visibility")
    path: str | None = "/v2/images" + (f"?limit={limit}" if limit else "")
    while path:
        page = session.call("GET", path).json()
        for img in page["images"]:
            table.add_row(img["id"], img["name"] or "", img["status"], img["disk_format"] or "",
                          str(img["size"] or ""), img["visibility"])
        path = None if limit else page.get("next")
    print_table(table)


@image.command("show")
def show(ctx: typer.Context, image_id: str) -> None:
    typer.echo(json.dumps(ctx.obj().call("GET", f"/v2/images/{image_id}").json(), indent=2))


@image.command("download")
def download(ctx: typer.Context, image_id: str, output: Path = typer.Option(..., "--file", "-o")) -> None:
    """Download an image's data (checked against its md5)."""
    import hashlib
    session = ctx.obj()
    md5 = hashlib.md5(usedforsecurity=False)
    with session.http.stream("GET", f"{session.url}/v2/images/{image_id}/file") as resp:
        _check(resp)
        total = int(resp.headers.get("content-length", 0)) or None
        with _progress() as progress, output.open("wb") as f:
            task = progress.add_task(f"downloading {image_id}", total=total)
            for chunk in resp.iter_bytes(_CHUNK):
                f.write(chunk)
                md5.update(chunk)
                progress.advance(task, len(chunk))
        expected = resp.headers.get("content-md5")
    if expected and expected != md5.hexdigest():
        console.print("[red]checksum mismatch[/red]")
        raise typer.Exit(1)
    typer.echo(str(output))


@image.command("delete")
def delete(ctx: typer.Context, image_id: str) -> None:
    ctx.obj().call("DELETE", f"/v2/images/{image_id}")
    typer.echo(f"deleted {image_id}")


def _print_insight(found: dict) -> None:
    """The report as JSON on stdout; the checks that did not pass, and a failure, on stderr too."""
    typer.echo(json.dumps(found, indent=2))
    report = found.get("report") or {}
    for check in report.get("checks") or []:
        if check["result"] != "pass":
            console.print(f"[yellow]{check['result']}[/yellow] {check['name']}: {escape(check['reason'])}",
                          soft_wrap=True)
    if found.get("status") == "failed":
        console.print(f"[red]{escape(str(found.get('error')))}[/red]", soft_wrap=True)
        raise typer.Exit(1)


@image.command("inspect")
def inspect(ctx: typer.Context, image_id: str,
            wait: bool = typer.Option(True, "--wait/--no-wait", help="wait for the reading and print its report")
            ) -> None:
    """Read what is inside the image again (OS, kernels, boot mode, checks); prints the report."""
    import time
    session = ctx.obj()
    job = session.call("POST", f"/vmimage/v1/images/{image_id}/insight").json()["job"]
    if not wait:
        typer.echo(json.dumps(job, indent=2))
        return
    while job["status"] not in ("SUCCESS", "FAIL"):
        time.sleep(0.3)
        job = session.call("GET", f"/vmimage/v1/jobs/{job['id']}").json()["job"]
    _print_insight(session.call("GET", f"/vmimage/v1/images/{image_id}/insight").json()["insight"])


@image.command("insight")
def insight(ctx: typer.Context, image_id: str) -> None:
    """What the last inspection found inside the image (the full report, declared vs detected)."""
    _print_insight(ctx.obj().call("GET", f"/vmimage/v1/images/{image_id}/insight").json()["insight"])
