"""Role checks for views: login first, then the role, else 403."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from django_htmx.http import HttpResponseClientRedirect

from core.accounts.roles import has_role, may_see_all, owned_by_or_admin, role_level


def role_required(role: str):
    """Let the view run only for a logged-in user holding `role` (or a higher one).

    An HTMX request whose session has expired (a poll, a filter change) is sent to the
    login page as a whole, rather than having the login form swapped into a table.
    """

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                if getattr(request, "htmx", False):
                    login = redirect_to_login(request.htmx.current_url_abs_path or request.get_full_path())
                    return HttpResponseClientRedirect(login.url)
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, role):
                raise PermissionDenied(f"This page needs the role {role}.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def sees_everyones(user) -> bool:
    """Batches and imports: core.accounts.roles.may_see_all, for the logged-in user."""
    return may_see_all(role_level(user))


def owned_by(queryset: QuerySet, user) -> QuerySet:
    return owned_by_or_admin(queryset, user, role_level(user))


def get_owned(queryset: QuerySet, user, what: str, **lookup):
    """The row for `lookup` if this user may open it: 404 when missing, 403 when another's."""
    row = queryset.select_related("user").filter(**lookup).first()
    if row is None:
        raise Http404(f"There is no {what} {next(iter(lookup.values()))}.")
    if row.user_id != user.pk and not sees_everyones(user):
        raise PermissionDenied(f"This {what} belongs to another user; only admins see other users' {what}s.")
    return row
