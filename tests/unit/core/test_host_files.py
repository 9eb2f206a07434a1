"""Path confinement of host files registered as images: only regular files under a root."""

import os

import pytest

from vmimage.core.errors import InvalidSource
from vmimage.core.services.host_files import open_confined


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "sub").mkdir(parents=True)
    (r / "sub" / "disk.img").write_bytes(b"data")
    (tmp_path / "outside.img").write_bytes(b"secret")
    (r / "out-link").symlink_to(tmp_path / "outside.img")
    (r / "dir-link").symlink_to(tmp_path, target_is_directory=True)
    return r


def test_a_file_under_a_root_opens(root):
    with open_confined(["/nonexistent", str(root)], f"{root}/sub/./disk.img") as f:
        assert f.read() == b"data"


@pytest.mark.parametrize("path", ["/etc/passwd", "{root}/../outside.img", "{root}/sub/../sub/disk.img",
                                  "{root}/out-link", "{root}/dir-link/outside.img", "{root}/sub",
                                  "{root}", "{root}/nope", "sub/disk.img", "{root}/sub/disk.img\0",
                                  "{root}-other/sub/disk.img"])
def test_everything_else_is_refused(root, path):
    with pytest.raises(InvalidSource):
        open_confined([str(root)], path.format(root=root))


def test_no_roots_no_registration(root):
    with pytest.raises(InvalidSource):
        open_confined([], f"{root}/sub/disk.img")


def test_a_fifo_is_refused_without_blocking(root):
    os.mkfifo(root / "fifo")
    with pytest.raises(InvalidSource):
        open_confined([str(root)], f"{root}/fifo")


def test_a_link_in_the_root_itself_is_followed_once_resolved(tmp_path, root):
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)
    with open_confined([str(alias)], f"{root}/sub/disk.img") as f:   # the root as configured resolves
        assert f.read() == b"data"
    with pytest.raises(InvalidSource):                               # but callers give real paths
        open_confined([str(alias)], f"{alias}/sub/disk.img")
