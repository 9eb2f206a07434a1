"""Typed request bodies: the shared pieces of each face's models, and one way to check a
parsed JSON body against a model (pydantic), refusing with the core's Invalid.

Bounds that hold on every face: integers fit in 63 bits, names and ids are at most 255
characters, booleans are JSON booleans ("no" is not false), nothing is coerced.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from starlette.requests import Request

from vmimage.core.errors import Invalid
from vmimage.faces.http import json_object_body
from vmimage.faces.limits import INT63_MAX

Int63 = Annotated[StrictInt, Field(ge=-INT63_MAX - 1, le=INT63_MAX)]
Name = Annotated[StrictStr, Field(max_length=255)]
Ident = Annotated[StrictStr, Field(max_length=255)]
Text = Annotated[StrictStr, Field(max_length=1024)]
Path = Annotated[StrictStr, Field(max_length=4096)]
Bool = StrictBool

M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    """A request body or a part of one: strict types; unknown keys are ignored."""
    model_config = ConfigDict(strict=True, extra="ignore")


class OpenBody(Body):
    """A body whose unknown keys go on unchanged (a dialect's extensions)."""
    model_config = ConfigDict(strict=True, extra="allow")


def validated(model: type[M], data: Any) -> M:
    """The body as a model; Invalid naming the first offending field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"]
        raise Invalid(f"Invalid '{where}': {message}" if where else f"Invalid request body: {message}",
                      field=str(where)) from None


def as_spec(body: BaseModel) -> dict[str, Any]:
    """What the caller set (nulls included), as plain data for the core."""
    return body.model_dump(exclude_unset=True)


def body_of(model: type[BaseModel]) -> Callable[[Request], Awaitable[dict[str, Any]]]:
    """A dependency: the request's JSON object body checked against model, as a spec dict."""
    async def spec(request: Request) -> dict[str, Any]:
        return as_spec(validated(model, await json_object_body(request)))
    spec.__name__ = f"{model.__name__}_body"
    return spec
