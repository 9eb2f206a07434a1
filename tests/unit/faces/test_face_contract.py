"""The face contract holds: a face imports only the core and the shared face helpers, every
face exports FACE, and the app names no face's URL prefix."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import vmimage
from vmimage.faces.contract import Face
from vmimage.faces.mount import face_app

ROOT = Path(vmimage.__file__).parent
FACES = sorted(p for p in (ROOT / "faces").iterdir() if p.is_dir() and (p / "__init__.py").exists())
SHARED = ("vmimage.faces.contract", "vmimage.faces.http", "vmimage.faces.limits", "vmimage.faces.bodies",
          "vmimage.faces.errors", "vmimage.faces.signed", "vmimage.faces.schemas")


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def test_there_are_faces():
    assert {p.name for p in FACES} >= {"aries", "glance_v2", "keystone", "native"}


def _allowed(name: str, own: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in ("vmimage.core", own, *SHARED))


def test_faces_import_only_the_core_and_the_shared_helpers():
    wrong = []
    for face in FACES:
        for path in face.rglob("*.py"):
            wrong += [f"{path.relative_to(ROOT)}: {name}" for name in _imports(path)
                      if name.startswith("vmimage") and not _allowed(name, f"vmimage.faces.{face.name}")]
    assert wrong == []


def test_shared_helpers_import_no_face_and_no_adapter():
    for module in SHARED:
        path = ROOT / (module.removeprefix("vmimage.").replace(".", "/") + ".py")
        for name in _imports(path):
            assert not re.match(r"vmimage\.(adapters|identity|bootstrap|settings|imaging)\b", name), name
            assert not any(name.startswith(f"vmimage.faces.{face.name}") for face in FACES), name


def test_the_core_imports_no_outer_layer():
    for path in (ROOT / "core").rglob("*.py"):
        for name in _imports(path):
            assert not re.match(r"vmimage\.(adapters|faces|identity|imaging|bootstrap|settings|app)\b", name), \
                f"{path.relative_to(ROOT)}: {name}"


def test_no_face_reads_app_state():
    for face in [*FACES, *(ROOT / "faces" / f"{m.rsplit('.', 1)[1]}.py" for m in SHARED)]:
        for path in (face.rglob("*.py") if face.is_dir() else [face]):
            assert "app.state" not in path.read_text(), path


def test_every_face_exports_its_contract():
    for face in FACES:
        exported = importlib.import_module(f"vmimage.faces.{face.name}").FACE
        assert isinstance(exported, Face)
        for part in ("core", "http", "invalid", "internal"):
            assert callable(getattr(exported.errors, part))


def test_the_app_names_no_face_prefix_and_no_error_shape():
    source = (ROOT / "app.py").read_text()
    for face in FACES:
        module = importlib.import_module(f"vmimage.faces.{face.name}")
        for path in face_app(module.FACE, _context()).openapi()["paths"]:
            prefix = "/" + path.strip("/").split("/")[0]
            if prefix != "/":
                assert f'"{prefix}' not in source and f"'{prefix}" not in source, prefix
    assert "exception_handler" not in source and "JSONResponse" not in source


def _context():
    class _Deps:
        cache = object()
    from vmimage.faces.contract import FaceContext
    return FaceContext(deps=_Deps(), identity=None)  # type: ignore[arg-type]


def test_every_route_of_a_face_is_a_face_route_and_matches_as_fastapi_would():
    from fastapi.routing import APIRoute
    from vmimage.faces.contract import FaceRoute
    for face in FACES:
        module = importlib.import_module(f"vmimage.faces.{face.name}")
        routes = face_app(module.FACE, _context()).router.routes
        assert routes and all(isinstance(r, FaceRoute) for r in routes), face.name
        # every route's own path (parameters filled in), and a few that are nobody's
        paths = [re.sub(r"\{[^}]+\}", "x1", r.path_format) for r in routes] + ["/", "/v2", "/v2/imagesx", "/nowhere"]
        for route in routes:
            for path in paths:
                for method in ("GET", "POST"):
                    scope = {"type": "http", "path": path, "method": method, "root_path": "", "headers": []}
                    fast, _ = route.matches(scope)
                    usual, _ = APIRoute.matches(route, dict(scope))
                    assert fast == usual, (face.name, route.path, path, method)


def test_a_face_reads_its_own_settings_when_mounted():
    from dataclasses import replace
    from vmimage.faces import glance_v2, jdcloud
    environ = {"VMIMAGE_REGIONS": " cn-east-2, ,cn-south-1", "VMIMAGE_SHOW_LOCATIONS": "true"}
    context = replace(_context(), environ=environ)
    mounted = {face.name: face_app(face, context) for face in (jdcloud.FACE, glance_v2.FACE)}
    settings = {name: app.user_middleware[0].kwargs["context"].settings for name, app in mounted.items()}
    assert settings["jdcloud"].single_region_alias is None     # its regions are the service's
    assert settings["glance_v2"].show_locations is True
    defaults = {face.name: face.settings({}) for face in (jdcloud.FACE, glance_v2.FACE)}
    assert defaults["jdcloud"].single_region_alias == "cn-north-1" and defaults["glance_v2"].show_locations is False


def test_adding_a_face_is_one_mount_line():
    """app.py names each face twice: in its import and in FACES; nothing else of a face's."""
    source = (ROOT / "app.py").read_text()
    for face in FACES:
        mentions = re.findall(rf"\b{face.name}\b", source)
        assert len(mentions) == 2 and f"{face.name}.FACE," in source, (face.name, mentions)
