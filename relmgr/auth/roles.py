"""Authorisation: the one rule of who may do what, asked by every front end before it acts.

    viewer    read
    operator  read, control releases (approve, pause, resume, cancel, retry)
    admin     read, control releases, manage users

A user's role is the highest of the roles the users file gives them; a name that is not a role
grants nothing beyond reading, so a typo never widens access.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

from relmgr.errors import ForbiddenError


class User(Protocol):
    """Anyone with a username and roles: the users file's `User`, the dashboard's `SignedIn`."""

    @property
    def username(self) -> str:
        """The user's name."""
        ...

    @property
    def roles(self) -> Sequence[str]:
        """The roles the users file gives them."""
        ...


class Role(StrEnum):
    """The roles of the users file, lowest first."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


class Permission(StrEnum):
    """What a role may do."""

    READ = "read"
    CONTROL = "control"
    MANAGE_USERS = "manage_users"


_RANK = {role: rank for rank, role in enumerate(Role)}
_NAMES = frozenset(r.value for r in Role)
_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.CONTROL}),
    Role.ADMIN: frozenset({Permission.READ, Permission.CONTROL, Permission.MANAGE_USERS}),
}
_NEEDED = {
    Permission.READ: Role.VIEWER,
    Permission.CONTROL: Role.OPERATOR,
    Permission.MANAGE_USERS: Role.ADMIN,
}


def parse_role(text: str) -> Role:
    """The role named `text`; ValueError naming the roles if it is none of them."""
    try:
        return Role(text)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise ValueError(f"{text!r} is not a role; use one of {names}") from None


def role_of(user: User) -> Role:
    """The highest role the user has; viewer if the file names none."""
    known = [Role(name) for name in user.roles if name in _NAMES]
    return max(known, key=_RANK.__getitem__, default=Role.VIEWER)


def allows(user: User, permission: Permission) -> bool:
    """True if the user's role grants `permission` (front ends ask before showing a button)."""
    return permission in _GRANTS[role_of(user)]


def authorize(user: User, permission: Permission) -> Role:
    """The user's role if it grants `permission`; ForbiddenError saying which role is needed."""
    role = role_of(user)
    if permission not in _GRANTS[role]:
        needed = _NEEDED[permission]
        raise ForbiddenError(
            f"{user.username} has the {role.value} role; {permission.value.replace('_', ' ')} "
            f"needs the {needed.value} role or higher",
            role=role.value,
        )
    return role
