"""What vmimage keeps on disk is its own: files 0600, folders 0700.

The serving process runs with umask 077 (cli/main.py), so whatever it or its children
(qemu-img, QEMU, SQLite) create is private; the helpers here make the modes explicit where
vmimage creates things itself and tighten what an earlier version left looser. A data dir the
operator made is kept as it is, with a warning when others may read it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from vmimage.identity.secret_box import key_from_text, new_key_text

PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700
log = logging.getLogger("vmimage")


def prepare_data_dir(path: Path) -> None:
    if not path.exists():
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        os.chmod(path, PRIVATE_DIR)
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("data dir %s is mode %o: other users may read what it holds; "
                    "chmod 700 it unless that is intended", path, mode)


def tighten(path: Path) -> None:
    """A file to 0600 (a folder to 0700), if it is ours and looser."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if st.st_uid != os.geteuid() or stat.S_ISLNK(st.st_mode):
        return
    wanted = PRIVATE_DIR if stat.S_ISDIR(st.st_mode) else PRIVATE_FILE
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        if stat.S_IMODE(st.st_mode) & ~wanted:
            os.chmod(path, stat.S_IMODE(st.st_mode) & wanted)


def tighten_tree(root: Path, include_root: bool = True) -> None:
    """Every file and folder below root (root itself too unless the operator owns it)."""
    if not root.is_dir():
        return
    if include_root:
        tighten(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            tighten(Path(dirpath) / name)


def load_or_create_key(path: Path) -> bytes:
    """The secret key in path; made (0600, never overwritten) on first start."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        tighten(path)
        return key_from_text(path.read_text())
    with os.fdopen(fd, "w") as f:
        f.write(new_key_text() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return key_from_text(path.read_text())
