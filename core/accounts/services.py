"""Users, roles and departments: the few workflows other areas need."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from core.accounts.models import Department, Profile
from core.accounts.roles import ALL_ROLES


def ensure_role_groups() -> None:
    for name in ALL_ROLES:
        Group.objects.get_or_create(name=name)


def grant_role(user, role: str) -> None:
    if role not in ALL_ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ALL_ROLES)}")
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    user.__dict__.pop("_ax_groups", None)


def create_user(
    username: str,
    role: str | None,
    *,
    password: str | None = None,
    department: Department | None = None,
    hourly_rate=None,
    email: str = "",
):
    User = get_user_model()
    user = User(username=username, email=email)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    if role:
        grant_role(user, role)
    profile, _ = Profile.objects.get_or_create(user=user)
    profile.department, profile.hourly_rate = department, hourly_rate
    profile.save()
    user.profile = profile
    return user


def department_code(user) -> str:
    """The user's department code for audit rows, or '' (never raises)."""
    try:
        department = user.profile.department
    except Exception:  # a user without profile (created before the signal) has no department
        return ""
    return department.code if department else ""
