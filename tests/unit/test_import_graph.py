"""No import circle in vmimage/: every module's imports (at module level and inside
functions alike) form a graph without cycles.

An edge A -> B means that running A's import statement needs module B to have run:
- `import a.b.c` needs a, a.b and a.b.c;
- `from a.b import c` needs a.b.c when that is a module (a package: its __init__), else the
  name c defined by a.b, so a.b itself; the packages above are needed as with `import`;
- relative imports are resolved against A's package first;
- imports under `if TYPE_CHECKING:` count as well (a circle there is one waiting to happen).
The packages A sits in are being imported before A runs (Python imports them first), so a
module reaching a sibling through them (`from vmimage.faces.aries import translate` in
vmimage/faces/aries/routes.py) or importing them by name needs no edge to them; it does need
one when it takes a name their __init__ defines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import vmimage

ROOT = Path(vmimage.__file__).parent
PACKAGE = "vmimage"


def _modules(root: Path) -> dict[str, Path]:
    """Every module under the package directory root, by dotted name."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _ancestors(name: str) -> list[str]:
    """a.b.c -> [a, a.b]"""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _edges(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The vmimage modules that have to run for module's imports."""
    own = set(_ancestors(module))
    is_package = path.name == "__init__.py"
    needed: set[str] = set()

    def needs(target: str, defined_names: bool) -> None:
        """target and the packages above it; one of module's own packages only when a name
        its __init__ defines is taken (else being under way is enough)."""
        needed.update(a for a in _ancestors(target) if a not in own)
        if defined_names or target not in own:
            needed.add(target)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    needs(alias.name, defined_names=False)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, is_package, node)
            if source.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in modules:          # a submodule (or subpackage): that is what must run
                    needs(sub, defined_names=False)
                else:                       # a name the module defines: all of it must have run
                    needs(source, defined_names=True)
    needed.discard(module)
    return {n for n in needed if n in modules}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = _modules(root)
    return {name: _edges(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (its modules in order, the first repeated at the end), or None."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, on_path = [start], {start}
        stack = [iter(sorted(graph[start]))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if nxt in on_path:
                return path[path.index(nxt):] + [nxt]
            if nxt in done:
                continue
            path.append(nxt)
            on_path.add(nxt)
            stack.append(iter(sorted(graph[nxt])))
    return None


def test_vmimage_has_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_graph_holds_imports_made_inside_functions():
    graph = import_graph()
    assert "vmimage.bootstrap" in graph["vmimage.app"]                 # module level
    assert "vmimage.bootstrap" in graph["vmimage.cli.buckets"]         # inside _container()
    assert "vmimage.faces.aries" in graph["vmimage.app"]               # from vmimage.faces import aries


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"__init__.py": "", **files}.items():
        path = root / "vmimage" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "vmimage"


def test_a_package_importing_its_modules_which_import_each_other_is_no_circle(tmp_path):
    root = _package(tmp_path, {
        "pkg/__init__.py": "from vmimage.pkg import a\nfrom vmimage.pkg.b import B\n",
        "pkg/a.py": "from vmimage.pkg import b\nfrom .. import pkg\nimport vmimage.pkg\n",
        "pkg/b.py": "from . import c\nB = 1\n",
        "pkg/c.py": "def later():\n    from vmimage import other\n",
        "other.py": "",
    })
    graph = import_graph(root)
    assert graph["vmimage.pkg"] == {"vmimage.pkg.a", "vmimage.pkg.b"}
    assert graph["vmimage.pkg.a"] == {"vmimage.pkg.b"}
    assert graph["vmimage.pkg.b"] == {"vmimage.pkg.c"}
    assert graph["vmimage.pkg.c"] == {"vmimage.other"}
    assert find_cycle(graph) is None


def test_a_module_taking_a_name_its_package_defines_closes_a_circle(tmp_path):
    root = _package(tmp_path, {
        "pkg/__init__.py": "from vmimage.pkg.a import run\nLIMIT = 3\n",
        "pkg/a.py": "def run():\n    from . import LIMIT\n",
    })
    assert find_cycle(import_graph(root)) == ["vmimage.pkg", "vmimage.pkg.a", "vmimage.pkg"]


def test_a_circle_across_packages_is_found(tmp_path):
    root = _package(tmp_path, {
        "one/__init__.py": "",
        "one/x.py": "import vmimage.two.y\n",
        "two/__init__.py": "from vmimage.one import x\n",
        "two/y.py": "",
    })
    # one.x needs two (its __init__ runs before two.y), whose __init__ needs one.x.
    assert find_cycle(import_graph(root)) == ["vmimage.one.x", "vmimage.two", "vmimage.one.x"]
