"""API tokens from the command line: issued once, stored hashed, revocable."""

from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.forms.models import model_to_dict

from core.accounts.models import TOKEN_PREFIX, ApiToken
from core.accounts.roles import MCP_ADMIN, MCP_READ, MCP_WRITE, role_level
from tests.helpers import ApiClient


def create_token(*args: str) -> str:
    """Run create_api_token and return the raw token, the last word it prints."""
    out = StringIO()
    call_command("create_api_token", *args, stdout=out)
    return out.getvalue().split()[-1]


def test_token_is_the_last_word_printed(writer):
    raw = create_token("writer", "--role", MCP_WRITE)
    assert raw.startswith(TOKEN_PREFIX)
    assert len(raw) > 40
    token = ApiToken.objects.get()
    assert (token.user, token.role, token.prefix) == (writer, MCP_WRITE, raw[:12])


def test_only_the_sha256_hash_is_stored(writer):
    raw = create_token("writer", "--role", MCP_WRITE, "--name", "ci")
    token = ApiToken.objects.get()
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert token.name == "ci"
    row = " ".join(str(value) for value in model_to_dict(token).values())
    assert raw not in row
    assert raw[12:] not in row


def test_each_call_issues_a_new_token(writer):
    first = create_token("writer", "--role", MCP_WRITE)
    second = create_token("writer", "--role", MCP_WRITE)
    assert first != second
    assert ApiToken.objects.count() == 2


def test_create_makes_the_user_with_the_role(db):
    raw = create_token("newbie", "--role", MCP_ADMIN, "--create")
    user = get_user_model().objects.get(username="newbie")
    assert role_level(user) == 3
    assert not user.has_usable_password()
    assert ApiToken.objects.get(user=user).role == MCP_ADMIN
    assert raw.startswith(TOKEN_PREFIX)


def test_unknown_user_without_create_is_refused(db):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("create_api_token", "ghost", "--role", MCP_READ, stdout=StringIO())
    assert not get_user_model().objects.filter(username="ghost").exists()
    assert ApiToken.objects.count() == 0


def test_user_lacking_the_role_is_refused(reader):
    with pytest.raises(CommandError, match="does not hold role"):
        call_command("create_api_token", "reader", "--role", MCP_WRITE, stdout=StringIO())
    assert ApiToken.objects.count() == 0


def test_create_does_not_grant_a_role_to_an_existing_user(reader):
    with pytest.raises(CommandError):
        call_command("create_api_token", "reader", "--role", MCP_ADMIN, "--create", stdout=StringIO())
    reader = get_user_model().objects.get(pk=reader.pk)
    assert role_level(reader) == 1


def test_a_lower_role_than_the_users_is_allowed(admin):
    create_token("admin", "--role", MCP_READ)
    assert ApiToken.objects.get().role == MCP_READ


def test_unknown_role_is_refused(writer):
    with pytest.raises(CommandError):
        call_command("create_api_token", "writer", "--role", "Superuser", stdout=StringIO())


def test_issued_token_works_on_the_api_and_sets_last_used(client, writer, erp):
    raw = create_token("writer", "--role", MCP_WRITE)
    assert ApiToken.objects.get().last_used is None
    response = ApiClient(client, raw).call("ax_get_customer", {"customer_account": "CUST-001"})
    assert response.status_code == 200
    assert ApiToken.objects.get().last_used is not None


def test_revoke_by_prefix_makes_the_token_unauthorized(client, writer, erp):
    raw = create_token("writer", "--role", MCP_WRITE)
    other = create_token("writer", "--role", MCP_WRITE)
    api = ApiClient(client, raw)
    assert api.call("ax_get_customer", {"customer_account": "CUST-001"}).status_code == 200
    out = StringIO()
    call_command("revoke_api_token", "--prefix", raw[:12], stdout=out)
    assert "revoked 1 token" in out.getvalue()
    response = api.call("ax_get_customer", {"customer_account": "CUST-001"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert ApiClient(client, other).call("ax_get_customer", {"customer_account": "CUST-001"}).status_code == 200


def test_revoke_by_user_revokes_all_their_tokens(client, writer, reader, erp):
    tokens = [create_token("writer", "--role", role) for role in (MCP_WRITE, MCP_READ)]
    reader_token = create_token("reader", "--role", MCP_READ)
    out = StringIO()
    call_command("revoke_api_token", "--user", "writer", stdout=out)
    assert "revoked 2 token" in out.getvalue()
    for raw in tokens:
        assert ApiClient(client, raw).get("/api/tools").status_code == 401
    assert ApiClient(client, reader_token).get("/api/tools").status_code == 200


def test_revoking_nothing_is_an_error(writer):
    with pytest.raises(CommandError, match="no active token"):
        call_command("revoke_api_token", "--user", "writer", stdout=StringIO())
    raw = create_token("writer", "--role", MCP_WRITE)
    call_command("revoke_api_token", "--prefix", raw[:12], stdout=StringIO())
    with pytest.raises(CommandError):  # already revoked
        call_command("revoke_api_token", "--prefix", raw[:12], stdout=StringIO())


def test_revoke_needs_prefix_or_user(db):
    with pytest.raises(CommandError):
        call_command("revoke_api_token", stdout=StringIO())
