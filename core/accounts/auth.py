"""Bearer-token authentication shared by the HTTP API and the MCP endpoint."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from core.accounts.models import TOKEN_PREFIX, ApiToken, hash_token

_LAST_USED_RESOLUTION = timedelta(minutes=1)


def parse_bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate_token(raw: str | None) -> ApiToken | None:
    """The active token for a raw value, with its user loaded, or None.

    The user's role is capped by the token's role in the tool pipeline.
    """
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        ApiToken.objects.active()
        .select_related("user", "user__profile", "user__profile__department")
        .filter(token_hash=hash_token(raw), user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    # Writing last_used on every request would turn every read into a write; a minute's
    # resolution is plenty for "is this token still in use".
    if token.last_used is None or now - token.last_used > _LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        token.last_used = now
    return token
