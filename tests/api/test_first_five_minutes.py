"""The README's first five minutes: `bash scripts/serve.sh`, then its `openstack` example.

Runs the real script (install step included) with its defaults — SQLite, local files, a
generated admin password, the clouds.yaml it writes — on a free port and a temporary data
dir, then the README's `openstack --os-cloud vmimage image create --file ...` line.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time

import httpx
import pytest

from tests.conftest import BIN, ROOT, free_port

pytestmark = pytest.mark.timeout(300)


def test_readme_example_against_serve_sh(tmp_path):
    if os.environ.get("VMIMAGE_TEST_DB") == "postgres":
        pytest.skip("serve.sh's default is SQLite; this runs once, in the SQLite pass")
    data = tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VMIMAGE_", "OS_"))}
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "serve.sh"), "--port", str(port),
                             "--data-dir", str(data)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240   # serve.sh may (re)install the base set first
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/versions", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve.sh did not serve in time"
            time.sleep(0.3)

        clouds = data / "clouds.yaml"
        assert clouds.exists() and (data / "admin-password").stat().st_mode & 0o777 == 0o600
        image = tmp_path / "cirros.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
        cli_env = {**env, "OS_CLIENT_CONFIG_FILE": str(clouds)}

        def openstack(*args: str) -> str:
            out = subprocess.run([str(BIN / "openstack"), "--os-cloud", "vmimage", *args], env=cli_env,
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stderr
            return out.stdout

        # The README's line, as written there.
        openstack("image", "create", "--file", str(image), "--disk-format", "qcow2",
                  "--container-format", "bare", "demo")
        shown = json.loads(openstack("image", "show", "demo", "-f", "json"))
        assert shown["status"] == "active"
        assert shown["checksum"] == hashlib.md5(image.read_bytes()).hexdigest()
        assert shown["size"] == image.stat().st_size
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
