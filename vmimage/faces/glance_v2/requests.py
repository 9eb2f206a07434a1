"""Glance request bodies whose shape is fixed, as typed models (bounds in faces/bodies.py).

Image bodies are free-form (every unknown key is an extra property) and are checked by the
core attribute by attribute; these are the small fixed ones.
"""

from __future__ import annotations

from vmimage.faces.bodies import Body, Ident, Name


class AddMember(Body):
    member: Ident


class UpdateMember(Body):
    status: Name
