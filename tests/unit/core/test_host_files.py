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


def test_a_hard_link_is_refused_even_to_a_file_of_the_root(tmp_path, root):
    os.link(tmp_path / "outside.img", root / "hard.img")       # exposes a file outside the root
    os.link(root / "sub" / "disk.img", root / "twin.img")      # both names inside: still refused
    for name in ("hard.img", "twin.img", "sub/disk.img"):
        with pytest.raises(InvalidSource, match="hard link"):
            open_confined([str(root)], f"{root}/{name}")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_files_of_other_users_only_when_listed_as_import_owners(root):
    foreign = root / "sub" / "foreign.img"
    foreign.write_bytes(b"theirs")
    os.chown(foreign, 65534, 65534)
    with pytest.raises(InvalidSource, match="belongs to a user"):
        open_confined([str(root)], str(foreign))
    with pytest.raises(InvalidSource, match="belongs to a user"):
        open_confined([str(root)], str(foreign), owners=[1234])
    with open_confined([str(root)], str(foreign), owners=[65534]) as f:
        assert f.read() == b"theirs"


def test_import_owners_setting_takes_names_and_uids(monkeypatch):
    from vmimage.settings import Settings
    monkeypatch.setenv("VMIMAGE_IMPORT_OWNERS", "root, 4321")
    assert Settings().import_owner_uids() == [0, 4321]
    monkeypatch.setenv("VMIMAGE_IMPORT_OWNERS", "no-such-user-here")
    with pytest.raises(ValueError, match="no user named"):
        Settings().import_owner_uids()
