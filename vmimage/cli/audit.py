"""`vmimage admin audit list` (local database): the audit trail, newest first."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

import typer

from vmimage.cli.client import print_table
from vmimage.cli.local import local_settings
from vmimage.core.errors import Invalid

audit_cmd = typer.Typer(help="The audit trail (logins refused, keys, grants, deletions, sharing)",
                        no_args_is_help=True)

_AGO = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def since_time(raw: str, now: datetime) -> datetime:
    """--since: an ISO time (UTC unless it says otherwise) or an age such as 30m, 1h, 7d."""
    ago = _AGO.match(raw.strip())
    if ago:
        return now - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise Invalid(f"--since must be an ISO time or an age such as 1h or 7d, not '{raw}'") from None
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


@audit_cmd.command("list")
def audit_list(ctx: typer.Context, since: str = typer.Option(None, "--since", help="ISO time, or 30m, 1h, 7d"),
               project: str = typer.Option(None, "--project", help="acting or target project (id or name)"),
               kind: str = typer.Option(None, "--kind", help="e.g. login, access_key.create, image.delete"),
               limit: int = typer.Option(100, "--limit", help="at most this many events"),
               as_json: bool = typer.Option(False, "--json", help="one JSON object a line")) -> None:
    """The audit events, newest first."""
    from vmimage.bootstrap import build
    from vmimage.core import audit

    container = build(local_settings(ctx.obj))
    try:
        start = since_time(since, datetime.now(timezone.utc).replace(tzinfo=None)) if since else None
        project_id = None
        if project is not None:
            found = container.identity.find_project(project)
            project_id = found.id if found else project     # a deleted project's id still matches
        events = audit.recent(container.deps.uow, start, project_id, kind, limit)
    finally:
        container.close()
    if as_json:
        for event in events:
            typer.echo(json.dumps({**asdict(event), "at": event.at.isoformat() + "Z"}))
        return
    from rich.table import Table
    table = Table("at", "kind", "outcome", "target", "target project", "detail", "user", "project", "from",
                  "request")
    for e in events:
        table.add_row(e.at.isoformat(timespec="seconds") + "Z", e.kind, e.outcome, e.target or "",
                      e.target_project_id or "", e.detail or "", e.user_name or e.user_id or "", e.project_id or "",
                      e.address or "", e.request_id or "")
    print_table(table)
