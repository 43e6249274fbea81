"""Plain helpers the tests of several areas use (fixtures live in conftest.py files, helpers
here, so that no test module imports a conftest)."""

from __future__ import annotations

import json

from django.test import Client

from core.accounts.models import ApiToken

HTMX = {"HX-Request": "true"}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


class ApiClient:
    """A Django test client that speaks the tool API with a Bearer token."""

    def __init__(self, client, raw_token: str) -> None:
        self.client = client
        self.token = raw_token

    def call(self, tool: str, arguments=None, *, key: str | None = None, raw: bytes | str | None = None,
             content_type: str = "application/json"):
        headers = {"Authorization": f"Bearer {self.token}"}
        if key:
            headers["Idempotency-Key"] = key
        body = raw if raw is not None else json.dumps(arguments if arguments is not None else {})
        return self.client.post(f"/api/tools/{tool}", data=body, content_type=content_type, headers=headers)

    def get(self, path: str):
        return self.client.get(path, headers={"Authorization": f"Bearer {self.token}"})


def make_api(client, user, role: str) -> ApiClient:
    _, raw = ApiToken.issue(user, role)
    return ApiClient(client, raw)
