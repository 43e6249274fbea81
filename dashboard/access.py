"""Role checks for views: login first, then the role, else 403."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from core.accounts.roles import has_role


def role_required(role: str):
    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, role):
                raise PermissionDenied(f"this page needs role {role}")
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
