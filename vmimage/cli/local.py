"""What the commands working on this machine's data directory share (serve, admin)."""

from __future__ import annotations

from pathlib import Path

from vmimage.settings import Settings


def local_settings(data_dir: Path | None, host: str | None = None, port: int | None = None) -> Settings:
    """The environment's settings (VMIMAGE_*), with what the command line gave instead."""
    s = Settings()
    if data_dir is not None:
        s.data_dir = data_dir
    if host is not None:
        s.host = host
    if port is not None:
        s.port = port
    return s
