"""The connection bound meets the open-file limit (vmimage/http_protocol.py): a flood of
connections must hit the bound, not EMFILE, which would fail the database and file opens of
requests under way. Each case runs in a process of its own (an open-file limit is per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vmimage.http_protocol import FILES_BESIDES_CONNECTIONS, FILES_PER_CONNECTION

PROBE = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))
from vmimage.http_protocol import limits
print(json.dumps([limits().max_connections, resource.getrlimit(resource.RLIMIT_NOFILE)[0]]))
"""


def probe(soft: int, hard: int, **env: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, str(soft), str(hard)], capture_output=True, text=True,
                         check=True, env={**os.environ, **env})
    return tuple(json.loads(out.stdout))


def test_the_soft_limit_is_raised_for_the_bound():
    need = FILES_BESIDES_CONNECTIONS + FILES_PER_CONNECTION * 1000
    assert probe(256, need + 100, VMIMAGE_MAX_CONNECTIONS="1000") == (1000, need)


@pytest.mark.parametrize("hard", [600, 1024])
def test_the_bound_is_cut_to_what_the_hard_limit_allows(hard):
    fits = (hard - FILES_BESIDES_CONNECTIONS) // FILES_PER_CONNECTION
    assert probe(256, hard, VMIMAGE_MAX_CONNECTIONS="1000") == (fits, hard)


def test_no_bound_leaves_the_limit_alone():
    assert probe(300, 4096, VMIMAGE_MAX_CONNECTIONS="-1") == (-1, 300)
