"""Keystone v3 `POST /auth/tokens` body as typed models (bounds in faces/bodies.py).

Keystone's own JSON schema refuses with 400 what has the wrong shape (a project given as a
string, a domain as a string, a token method without its object); what is well-formed but
wrong (a bad password, an unknown method) stays a 401 of the identity service.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictStr

from vmimage.faces.bodies import Body, Ident, Name

Secret = Annotated[StrictStr, Field(max_length=4096)]


class Domain(Body):
    id: Ident | None = None
    name: Name | None = None


class PasswordUser(Body):
    id: Ident | None = None
    name: Name | None = None
    password: Secret | None = None
    domain: Domain | None = None


class PasswordMethod(Body):
    user: PasswordUser


class TokenMethod(Body):
    id: Secret


class Identity(Body):
    methods: Annotated[list[Name], Field(min_length=1, max_length=8)]
    password: PasswordMethod | None = None
    token: TokenMethod | None = None


class Project(Body):
    id: Ident | None = None
    name: Name | None = None
    domain: Domain | None = None


class Scope(Body):
    project: Project | None = None
    domain: Domain | None = None


class Auth(Body):
    identity: Identity
    scope: Scope | Literal["unscoped"] | None = None


class AuthRequest(Body):
    auth: Auth
