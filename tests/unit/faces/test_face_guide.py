"""docs/adding-a-face.md stays true: its code is the tree's, the helpers it names exist, and
the files it points to are there."""

from __future__ import annotations

import importlib
import re
import textwrap
from pathlib import Path

import vmimage

ROOT = Path(vmimage.__file__).parent
REPO = ROOT.parent
GUIDE = (REPO / "docs" / "adding-a-face.md").read_text()


def test_every_python_block_is_code_of_the_tree():
    sources = "\n".join(p.read_text() for p in (ROOT / "faces").rglob("*.py"))
    blocks = re.findall(r"```python\n(.*?)```", GUIDE, flags=re.S)
    assert len(blocks) >= 5
    for block in blocks:
        assert textwrap.dedent(block).strip() in sources, block


def test_every_helper_the_guide_names_exists():
    rows = re.findall(r"^\| `(vmimage\.faces\.\w+)` \| (.*) \|$", GUIDE, flags=re.M)
    assert {module for module, _ in rows} >= {"vmimage.faces.contract", "vmimage.faces.http",
                                              "vmimage.faces.errors", "vmimage.faces.signed"}
    for module_name, names in rows:
        module = importlib.import_module(module_name)
        for name in re.findall(r"`(\w+)`", names):
            assert hasattr(module, name), f"{module_name}.{name}"


def test_every_file_the_guide_points_to_exists():
    paths = set(re.findall(r"`((?:vmimage|tests|docs|scripts)/[\w/.*-]+)`", GUIDE))
    assert paths
    for path in paths:
        assert list(REPO.glob(path)), path
