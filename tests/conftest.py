"""Shared fixtures: a real vmimage server process on a free loopback port, and its personas.

VMIMAGE_TEST_DB=postgres runs the suite against the local PostgreSQL (a fresh database per
session); the default is SQLite inside the server's data directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
VMIMAGE = [sys.executable, "-m", "vmimage.cli"]
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("VMIMAGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PERSONAS = {  # name: (password, project, role)
    "admin": ("admin", "admin", "admin"),
    "demo": ("demo", "demo", "member"),
    "alt": ("alt", "alt", "member"),
    "reader": ("reader", "demo", "reader"),
}


def qemu_processes_under(base: Path) -> list[int]:
    """Live qemu-system-* processes with a path under base in their command line (their
    pidfile, disks and QMP socket live in a data dir there): this run's guests, not another's."""
    found = []
    prefix = os.fsencode(str(base.resolve()) + os.sep)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except (OSError, IndexError):
            continue
        if (state != "Z" and argv and os.path.basename(argv[0]).startswith(b"qemu-system-")
                and any(prefix in arg for arg in argv)):
            found.append(int(entry.name))
    return found


def pytest_sessionfinish(session, exitstatus):
    """Fails the run if a QEMU guest a test started outlived the tests (and ends it)."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or getattr(factory, "_basetemp", None) is None:
        return      # no temporary directory was made, so no data dir and no guest
    left = qemu_processes_under(factory.getbasetemp())
    if not left:
        return
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    message = f"FAILED: QEMU guests left running by the tests (now killed): pids {left}"
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    else:
        print(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def reaped(check, timeout: float = 30.0, what: str = "data left in a store") -> None:
    """Wait until check() holds: the reaper deletes data a request let go of soon after the
    request, not during it."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def pg_databases(prefix: str = "vmimage_test") -> Iterator[Callable[[], str]]:
    """A function making fresh PostgreSQL databases (vmimage URLs), each dropped at the end;
    the test is skipped, with the reason printed, when no PostgreSQL answers."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        print(f"\nSKIP: PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    made: list[str] = []

    def make() -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        return f"{base}/{name}"

    try:
        yield make
    finally:
        for name in made:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def database_factory():
    """Returns a function making a fresh database URL (None = SQLite in the data dir)."""
    if os.environ.get("VMIMAGE_TEST_DB", "sqlite") != "postgres":
        yield lambda: None
        return
    with pg_databases() as make:
        yield make


# Every vmimage process the tests started: a data dir's guests are stopped when its last one stops.
STARTED: list[Server] = []


@dataclass
class Server:
    url: str
    data_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen
    tokens: dict[str, str] = field(default_factory=dict)
    projects: dict[str, str] = field(default_factory=dict)

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "images"

    def stored_blobs(self) -> list[str]:
        """Every file in the image store, committed or partial."""
        return sorted(str(p.relative_to(self.store_dir)) for p in self.store_dir.rglob("*") if p.is_file())

    def token(self, persona: str = "demo") -> str:
        if persona not in self.tokens:
            password, project, _ = PERSONAS[persona]
            resp = httpx.post(f"{self.url}/identity/v3/auth/tokens", json=auth_body(persona, password, project))
            assert resp.status_code == 201, resp.text
            self.tokens[persona] = resp.headers["X-Subject-Token"]
            self.projects[persona] = resp.json()["token"]["project"]["id"]
        return self.tokens[persona]

    def project_id(self, persona: str) -> str:
        self.token(persona)
        return self.projects[persona]

    def client(self, persona: str = "demo") -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-Auth-Token": self.token(persona)}, timeout=60)

    def admin_cli(self, *args: str) -> str:
        out = subprocess.run([*VMIMAGE, "admin", "--data-dir", str(self.data_dir), *args], env=self.env,
                             capture_output=True, text=True, check=True, timeout=120)
        return out.stdout

    def __post_init__(self) -> None:
        STARTED.append(self)

    def stop(self) -> None:
        """Stops the process; the last one of a data dir also stops the dir's guests, which
        outlive `vmimage serve` by design (the operator's `vmimage admin server stop-all`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not any(s.data_dir == self.data_dir and s.proc.poll() is None for s in STARTED):
            self.stop_guests()

    def stop_guests(self) -> None:
        if any((self.data_dir / "run").glob("*.pid")):
            self.admin_cli("server", "stop-all")


def sdk_connect(server: Server, persona: str = "demo"):
    """An openstacksdk connection logged in as a persona."""
    import openstack

    password, project, _ = PERSONAS[persona]
    return openstack.connect(
        auth_url=f"{server.url}/identity/v3", username=persona, password=password, project_name=project,
        user_domain_name="Default", project_domain_name="Default", region_name="RegionOne",
        identity_api_version="3", image_api_version="2")


def openstack_cli(server: Server, tmp_path: Path, persona: str = "demo"):
    """The official `openstack` command, logged in as a persona through a clouds.yaml."""
    password, project, _ = PERSONAS[persona]
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(json.dumps({"clouds": {"t": {"auth": {
        "auth_url": f"{server.url}/identity/v3", "username": persona, "password": password,
        "project_name": project, "user_domain_name": "Default", "project_domain_name": "Default"},
        "region_name": "RegionOne", "identity_api_version": 3}}}))
    env = {**server.env, "OS_CLIENT_CONFIG_FILE": str(clouds)}

    def cli(*args: str) -> str:
        out = subprocess.run([str(BIN / "openstack"), "--os-cloud", "t", *args], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout
    return cli


def auth_body(user: str, password: str, project: str) -> dict:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "password": password, "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}}


def start_server(tmp: Path, database_url: str | None, provision: bool = True, data_dir: Path | None = None,
                 **env_overrides: str) -> Server:
    """A vmimage process; pass the data_dir of an earlier one to restart it."""
    data_dir = data_dir or tmp / f"data-{uuid.uuid4().hex[:6]}"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "VMIMAGE_ADMIN_PASSWORD": "admin", "PYTHONUNBUFFERED": "1", **env_overrides}
    if database_url:
        env["VMIMAGE_DATABASE_URL"] = database_url
    log = open(data_dir / f"server-{port}.log", "w")
    proc = subprocess.Popen([*VMIMAGE, "serve", "--data-dir", str(data_dir), "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(tmp))
    server = Server(f"http://127.0.0.1:{port}", data_dir, env, proc)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {(data_dir / f'server-{port}.log').read_text()}")
        try:
            if httpx.get(f"{server.url}/versions", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("server did not start")
        time.sleep(0.1)
    if provision:
        provision_personas(server)
    return server


def provision_personas(server: Server) -> None:
    """Projects and users through the in-process identity service (the CLI has its own test)."""
    from vmimage.bootstrap import build
    from vmimage.settings import Settings

    settings = Settings(data_dir=server.data_dir, database_url=server.env.get("VMIMAGE_DATABASE_URL"))
    container = build(settings, migrate=False)
    try:
        for name, (password, project, role) in PERSONAS.items():
            if name == "admin":
                continue
            container.identity.ensure_project(project)
            container.identity.create_user(name, password, project, role)
    finally:
        container.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory, database_factory):
    srv = start_server(tmp_path_factory.mktemp("srv"), database_factory())
    yield srv
    srv.stop()
    shutil.rmtree(srv.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def strict_server(tmp_path_factory, database_factory):
    """Small limits: a 4 MiB size cap, 3 images per project."""
    srv = start_server(tmp_path_factory.mktemp("strict"), database_factory(),
                       VMIMAGE_MAX_IMAGE_SIZE=str(4 << 20), VMIMAGE_QUOTA_IMAGES="3")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def images_dir(tmp_path_factory) -> Path:
    """Real disk images made with qemu-img."""
    d = tmp_path_factory.mktemp("images")
    raw = d / "disk.raw"
    with raw.open("wb") as f:
        f.truncate(64 << 20)
        for offset in (0, 5 << 20, 40 << 20):
            f.seek(offset)
            f.write(os.urandom(1 << 20))
    qemu = lambda *a: subprocess.run(["qemu-img", *a], check=True, capture_output=True)  # noqa: E731
    qemu("convert", "-f", "raw", "-O", "qcow2", str(raw), str(d / "disk.qcow2"))
    qemu("create", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", str(d / "backing.qcow2"), "1M")
    qemu("create", "-f", "qcow2", "-o", f"data_file={d / 'external.raw'}", str(d / "datafile.qcow2"), "1M")
    qemu("create", "-f", "qcow2", "--object", "secret,id=s0,data=pw", "-o",
         "encrypt.format=aes,encrypt.key-secret=s0", str(d / "encrypted.qcow2"), "1M")
    qemu("create", "-f", "vmdk", str(d / "disk.vmdk"), "8M")
    (d / "hostfile.vmdk").write_text(
        '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n'
        'createType="monolithicFlat"\n\n# Extent description\nRW 2048 FLAT "/etc/hostname" 0\n\n'
        '# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = "4"\nddb.geometry.cylinders = "2"\n'
        'ddb.geometry.heads = "16"\nddb.geometry.sectors = "63"\nddb.adapterType = "ide"\n')
    return d


@pytest.fixture(scope="session")
def swift_s3(tmp_path_factory):
    """A real OpenStack Swift with the S3 API on free loopback ports (scripts/swift-s3.sh)."""
    from tests.swift import SwiftMissing, start_swift

    try:
        swift = start_swift(tmp_path_factory.mktemp("swift"))
    except SwiftMissing as exc:
        print(f"\nSKIP: {exc}")
        pytest.skip(str(exc))
    yield swift
    swift.stop()
