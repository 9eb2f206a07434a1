"""The JSON schemas Glance publishes under /v2/schemas (clients build models from them); the
image and member ones are shared with the Huawei IMS face (vmimage/faces/schemas.py)."""

from __future__ import annotations

from typing import Any

from vmimage.faces.schemas import IMAGE_SCHEMAS


def task_schema(summary: bool = False) -> dict[str, Any]:
    text, maybe_text = {"type": "string"}, {"type": ["null", "string"]}
    properties: dict[str, Any] = {
        "id": {"type": "string", "pattern": "^[0-9a-fA-F-]+$", "description": "An identifier for the task"},
        "type": {"type": "string", "enum": ["import", "api_image_import", "location_import"],
                 "description": "The type of task represented by this content"},
        "status": {"type": "string", "enum": ["pending", "processing", "success", "failure"],
                   "description": "The current status of this task"},
        "owner": text, "image_id": maybe_text, "request_id": maybe_text, "user_id": maybe_text,
        "expires_at": maybe_text, "created_at": text, "updated_at": text, "self": text, "schema": text,
    }
    if not summary:
        properties.update({"input": {"type": ["null", "object"]}, "result": {"type": ["null", "object"]},
                           "message": text})
    return {"name": "task", "properties": properties}


def tasks_schema() -> dict[str, Any]:
    return {"name": "tasks",
            "properties": {"tasks": {"type": "array", "items": task_schema(summary=True)},
                           "schema": {"type": "string"}, "first": {"type": "string"}, "next": {"type": "string"}},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}


SCHEMAS = {**IMAGE_SCHEMAS, "task": task_schema, "tasks": tasks_schema}
