"""Nothing left running: the operator's `vmimage admin server stop-all`, the tests' own
teardown and the session-end check that fails a run leaving a QEMU guest behind."""

from __future__ import annotations

import json
import shutil
import signal

import pytest

from tests.conftest import ROOT, qemu_processes_under, start_server

pytest_plugins = ["pytester"]
V1 = "/vmimage/v1"
OCTET = {"Content-Type": "application/octet-stream"}
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="qemu-system-x86_64 is not installed")


def qcow2_image(http, images_dir) -> str:
    """An active qcow2 image, to boot servers from."""
    image = http.post("/v2/images", json={"name": "g", "disk_format": "qcow2", "container_format": "bare"}).json()
    assert http.put(f"/v2/images/{image['id']}/file", content=(images_dir / "disk.qcow2").read_bytes(),
                    headers=OCTET).status_code == 204
    return image["id"]


@needs_qemu
def test_stop_all_stops_every_guest_and_records_it(tmp_path, database_factory, images_dir):
    """Guests outlive `vmimage serve`; stop-all ends them, and the database says stopped."""
    srv = start_server(tmp_path, database_factory())
    try:
        with srv.client("demo") as http:
            image_id = qcow2_image(http, images_dir)
            made = [http.post(f"{V1}/servers", json={"name": f"g{i}", "image_id": image_id}) for i in range(2)]
            assert [r.status_code for r in made] == [201, 201], [r.text for r in made]
            ids = sorted(r.json()["server"]["id"] for r in made)
            idle = http.post(f"{V1}/servers", json={"name": "idle", "image_id": image_id, "start": False})
            assert idle.status_code == 201, idle.text
        assert len(qemu_processes_under(srv.data_dir)) == 2

        srv.proc.send_signal(signal.SIGTERM)        # the service stops; by design its guests do not
        srv.proc.wait(timeout=30)
        assert len(qemu_processes_under(srv.data_dir)) == 2
        assert json.loads(srv.admin_cli("server", "stop-all")) == {"stopped": ids}
        assert qemu_processes_under(srv.data_dir) == []
        assert json.loads(srv.admin_cli("server", "stop-all")) == {"stopped": []}     # nothing left to do

        srv = start_server(tmp_path, srv.env.get("VMIMAGE_DATABASE_URL"), provision=False, data_dir=srv.data_dir)
        with srv.client("demo") as http:
            listed = http.get(f"{V1}/servers").json()["servers"]
        assert {s["name"]: s["status"] for s in listed} == {"g0": "stopped", "g1": "stopped", "idle": "stopped"}
        assert qemu_processes_under(srv.data_dir) == []
    finally:
        srv.stop()


@needs_qemu
def test_the_last_process_of_a_data_dir_stops_its_guests(tmp_path, database_factory, images_dir):
    """The test fixtures' rule: a second process on the same data dir stopping spares the guests
    of the first; the last one stopping ends them."""
    srv = start_server(tmp_path, database_factory())
    other = start_server(tmp_path, srv.env.get("VMIMAGE_DATABASE_URL"), provision=False, data_dir=srv.data_dir)
    try:
        with srv.client("demo") as http:
            made = http.post(f"{V1}/servers", json={"name": "g", "image_id": qcow2_image(http, images_dir)})
            assert made.status_code == 201, made.text
        other.stop()
        assert len(qemu_processes_under(srv.data_dir)) == 1
    finally:
        other.stop()
        srv.stop()
    assert qemu_processes_under(srv.data_dir) == []


LEAVES_A_GUEST = """
import shutil, subprocess

def test_starts_a_guest_and_forgets_it(tmp_path):
    fake = tmp_path / "qemu-system-fake"          # what the check looks for: the name and a path of this run
    fake.symlink_to(shutil.which("sleep"))
    (tmp_path / "pid").write_text(str(subprocess.Popen([str(fake), "300"], start_new_session=True).pid))
"""


@pytest.mark.parametrize("forgets", [True, False])
def test_the_session_end_check_fails_a_run_that_leaves_a_guest(pytester, monkeypatch, forgets):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest("from tests.conftest import pytest_sessionfinish  # noqa: F401\n")
    body = LEAVES_A_GUEST if forgets else LEAVES_A_GUEST + (
        "    import os, signal\n    os.kill(int((tmp_path / 'pid').read_text()), signal.SIGKILL)\n")
    pytester.makepyfile(test_leaves=body)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    if forgets:
        assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
        result.stdout.fnmatch_lines(["*QEMU guests left running by the tests (now killed)*"])
    else:
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    pid = int(next(pytester.path.rglob("pid")).read_text())
    assert not _alive(pid), "a guest outlived the run"


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"

