"""Finding an entity from a caller-supplied reference, in one documented order.

An image reference resolves, first hit wins, to: (1) the image whose ref it is; (2) for a
decimal string, the image with that sequence number; (3) the one image with exactly that
name. Servers and volumes resolve the same way from their id, sequence number or name.
Only what the caller may see counts as a hit; no hit is NotFound.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from vmimage.core.errors import Invalid, NotFound
from vmimage.core.images import Image
from vmimage.core.inventory import Server, Volume
from vmimage.core.policy import Caller, require_owned
from vmimage.core.services.deps import Deps
from vmimage.core.services.images import find_visible

_DECIMAL = re.compile(r"^[0-9]{1,9}$")   # larger numbers cannot be sequence numbers (INTEGER)


def _seq(ref: str) -> int | None:
    return int(ref) if _DECIMAL.match(ref) else None


def _require_ref(ref: Any, what: str) -> str:
    if not isinstance(ref, str) or not ref.strip():
        raise Invalid(f"A {what} reference is required", field=f"{what}_ref")
    return ref


def _first_visible(candidates: Iterable[str], load: Callable[[str], Any]) -> Any | None:
    found = []
    for ident in candidates:
        try:
            found.append(load(ident))
        except NotFound:
            continue
    return found[0] if len(found) == 1 else None


def find_image_by_ref(deps: Deps, caller: Caller, ref: Any) -> Image:
    ref = _require_ref(ref, "image")
    with deps.uow() as uow:
        def visible(image_id: str) -> Image:
            return find_visible(uow, caller, image_id)

        by_ref = uow.images.get_by_ref(ref)
        hit = _first_visible([by_ref.id] if by_ref else [], visible)
        seq = _seq(ref)
        if hit is None and seq is not None:
            by_seq = uow.images.get_by_seq(seq)
            hit = _first_visible([by_seq.id] if by_seq else [], visible)
        if hit is None:
            hit = _first_visible(uow.images.ids_named(ref), visible)   # only a unique name
    if hit is None:
        raise NotFound("Image not found", image_id=ref)
    return hit


def load_image_by_seq(deps: Deps, caller: Caller, seq: int) -> Image:
    with deps.uow() as uow:
        image = uow.images.get_by_seq(seq) if 0 < seq < 1 << 31 else None
        if image is None:
            raise NotFound("Image not found", image_id=str(seq))
        return find_visible(uow, caller, image.id)


def visible_images(deps: Deps, caller: Caller, image_ids: Iterable[str | None]) -> dict[str, Image]:
    """The images among these ids that still exist and the caller may see, by id."""
    out: dict[str, Image] = {}
    with deps.uow() as uow:
        for image_id in {i for i in image_ids if i}:
            try:
                out[image_id] = find_visible(uow, caller, image_id)
            except NotFound:
                continue
    return out


def _find_owned(deps: Deps, caller: Caller, ref: Any, what: str, get: str, ids_where: str):
    """A server or volume by id, then sequence number, then unique name."""
    ref = _require_ref(ref, what.lower())
    with deps.uow() as uow:
        def load(ident: str):
            return require_owned(caller, getattr(uow.inventory, get)(ident), what, ident)

        ids = getattr(uow.inventory, ids_where)
        hit = _first_visible([ref], load)
        if hit is None and _seq(ref) is not None:
            hit = _first_visible(ids(seq=_seq(ref)), load)
        if hit is None:
            hit = _first_visible(ids(name=ref), load)
    if hit is None:
        raise NotFound(f"{what} not found", **{f"{what.lower()}_id": ref})
    return hit


def find_server_by_ref(deps: Deps, caller: Caller, ref: Any) -> Server:
    return _find_owned(deps, caller, ref, "Server", "get_server", "server_ids_where")


def find_volume_by_ref(deps: Deps, caller: Caller, ref: Any) -> Volume:
    return _find_owned(deps, caller, ref, "Volume", "get_volume", "volume_ids_where")
