"""Stores as callers see them, and taking an image's data out of one store."""

from __future__ import annotations

from dataclasses import dataclass

from vmimage.core.errors import Conflict, Forbidden, NotFound
from vmimage.core.images import Image, ImageStatus
from vmimage.core.policy import Caller, require_admin
from vmimage.core.services.deps import Deps
from vmimage.core.services.images import find_visible
from vmimage.core.services.imports import LOCK
from vmimage.core.services.reaper import reap_later


@dataclass(frozen=True)
class StoreInfo:
    id: str
    kind: str
    description: str
    default: bool
    read_only: bool
    weight: int | None = None        # None: no store weights configured


def list_stores(deps: Deps, region: str | None = None) -> list[StoreInfo]:
    """The named stores of a region (None: the default region's) and the read-only ones, its
    home store the default; NotFound when the service runs a single, unnamed store."""
    if not deps.multi_store:
        raise NotFound("This service has a single store")
    home, own = deps.home_store(region), set(deps.stores_of_region(deps.region_of(region)))
    weighed = bool(deps.store_weights)
    return [StoreInfo(name, store.kind, store.description, name == home, store.read_only,
                      deps.store_weights.get(name, 0) if weighed else None)
            for name, store in deps.stores.items() if store.read_only or name in own]


def store_details(deps: Deps, caller: Caller) -> list[StoreInfo]:
    stores = list_stores(deps, caller.region)      # 404 first when there are no named stores, as Glance
    require_admin(caller, "see the stores' details")
    return stores


def image_locations(deps: Deps, caller: Caller, image_id: str) -> Image:
    """For services (compute, volumes) that read image data straight from the stores."""
    if not caller.is_service:
        raise Forbidden("Only services may list an image's locations")
    with deps.uow() as uow:
        return find_visible(uow, caller, image_id)


def delete_from_store(deps: Deps, caller: Caller, store: str, image_id: str) -> None:
    """Drop one store's copy of an active image; its last copy is not dropped this way."""
    require_admin(caller, "delete an image's data from a store")
    if not deps.multi_store or store not in deps.stores:
        raise Conflict(f"Unknown store '{store}'", store=store)
    with deps.uow(write=True) as uow:
        image = find_visible(uow, caller, image_id, for_update=True)
        if image.status != ImageStatus.ACTIVE:
            raise Conflict(f"Image in status '{image.status}' cannot lose a store's copy", image_id=image_id)
        if image.properties.get(LOCK):
            raise Conflict("Image is being imported", image_id=image_id)
        kept = [loc for loc in image.locations if loc.store != store]
        gone = [loc for loc in image.locations if loc.store == store]
        if not gone:
            raise NotFound(f"Image has no data in store '{store}'", image_id=image_id, store=store)
        if deps.stores[store].read_only:
            raise Forbidden(f"Store '{store}' is read-only", store=store)
        if not kept:
            raise Forbidden("The image's last copy cannot be deleted; delete the image", image_id=image_id)
        image.locations = kept
        image.updated_at = deps.clock()
        for loc in gone:
            reap_later(deps, uow, loc.store, loc.key, image_id=image_id)
        uow.images.save(image)
        uow.commit()
    deps.wake_reaper()
