"""Trust an external Keystone: validate callers' tokens against its /v3/auth/tokens.

The rest of the Identity port (issuing tokens, passwords, access keys) stays with vmimage's
own identity, which this adapter is given as `local`."""

from __future__ import annotations

import threading
import time

import httpx

from vmimage.core.errors import BackendUnavailable, Unauthenticated
from vmimage.core.identity import AccessKeyGrant, Project, Token
from vmimage.core.policy import Caller, expand_roles
from vmimage.core.ports import Identity

_CACHE_SECONDS = 30.0


class ExternalKeystone:
    def __init__(self, url: str, username: str, password: str, project: str, local: Identity,
                 domain: str = "Default", timeout: float = 10.0) -> None:
        self._local = local
        self.url = url.rstrip("/")
        if not self.url.endswith("/v3"):
            self.url += "/v3"
        self._creds = (username, password, project, domain)
        self._client = httpx.Client(timeout=timeout)
        self._service_token: str | None = None
        self._cache: dict[str, tuple[float, Caller]] = {}
        self._lock = threading.Lock()

    def _login(self) -> str:
        user, password, project, domain = self._creds
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": password, "domain": {"name": domain}}}},
            "scope": {"project": {"name": project, "domain": {"name": domain}}}}}
        try:
            resp = self._client.post(f"{self.url}/auth/tokens", json=body)
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"Keystone unreachable: {exc}") from exc
        if resp.status_code != 201:
            raise BackendUnavailable(f"Keystone refused vmimage's service credentials ({resp.status_code})")
        return resp.headers["X-Subject-Token"]

    def caller(self, token_id: str) -> Caller:
        if not token_id:
            raise Unauthenticated("No token")
        with self._lock:
            hit = self._cache.get(token_id)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        for attempt in (0, 1):
            if self._service_token is None or attempt:
                self._service_token = self._login()
            try:
                resp = self._client.get(f"{self.url}/auth/tokens", headers={
                    "X-Auth-Token": self._service_token, "X-Subject-Token": token_id})
            except httpx.HTTPError as exc:
                raise BackendUnavailable(f"Keystone unreachable: {exc}") from exc
            if resp.status_code != 401:
                break
        if resp.status_code != 200:
            raise Unauthenticated("The token is unknown or has expired")
        token = resp.json()["token"]
        project = token.get("project")
        if not project:
            raise Unauthenticated("The image API needs a project-scoped token")
        caller = Caller(token["user"]["id"], project["id"],
                        expand_roles({r["name"] for r in token.get("roles", [])}))
        with self._lock:
            self._cache[token_id] = (time.monotonic() + _CACHE_SECONDS, caller)
        return caller

    def cached_caller(self, token_id: str) -> Caller | None:
        with self._lock:
            hit = self._cache.get(token_id)
        return hit[1] if hit and hit[0] > time.monotonic() else None

    # --- what vmimage's own identity answers ------------------------------------------------

    async def authenticate(self, auth: dict, client: str | None = None) -> Token:
        return await self._local.authenticate(auth, client)

    def validate(self, token_id: str) -> Token:
        return self._local.validate(token_id)

    def subject_token(self, auth_token_id: str, subject_token_id: str) -> Token:
        return self._local.subject_token(auth_token_id, subject_token_id)

    def revoke(self, token_id: str, by: Token | None = None) -> None:
        self._local.revoke(token_id, by)

    async def caller_for_password(self, user_name: str, password: str, client: str | None = None) -> Caller:
        return await self._local.caller_for_password(user_name, password, client)

    def access_key(self, access_key: str) -> AccessKeyGrant:
        return self._local.access_key(access_key)

    def caller_in_project(self, caller: Caller, project: str) -> Caller:
        return self._local.caller_in_project(caller, project)

    def list_projects(self) -> list[Project]:
        return self._local.list_projects()
