"""A one-node Swift with s3api for the tests and benchmarks, through scripts/swift-s3.sh."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "swift-s3.sh"


class SwiftMissing(RuntimeError):
    pass


@dataclass
class SwiftS3:
    dir: Path
    env: dict[str, str]          # VMIMAGE_S3_* for vmimage processes

    @property
    def endpoint(self) -> str:
        return self.env["VMIMAGE_S3_ENDPOINT"]

    def client(self):
        """A boto3 client straight onto the server (what tests and benchmarks check with)."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.env["VMIMAGE_S3_ACCESS_KEY"],
                            aws_secret_access_key=self.env["VMIMAGE_S3_SECRET_KEY"],
                            region_name=self.env["VMIMAGE_S3_REGION"],
                            config=Config(s3={"addressing_style": "path"},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    def stop(self) -> None:
        subprocess.run(["bash", str(SCRIPT), "stop", str(self.dir)], check=False, timeout=60)


def start_swift(directory: Path) -> SwiftS3:
    if shutil.which("swift-proxy-server") is None:
        raise SwiftMissing("OpenStack Swift is not installed (scripts/install.sh --test installs it)")
    out = subprocess.run(["bash", str(SCRIPT), "start", str(directory)], capture_output=True, text=True,
                         timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"swift did not start: {out.stderr}")
    env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return SwiftS3(directory, env)
