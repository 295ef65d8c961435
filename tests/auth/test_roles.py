"""The one authorisation rule: viewer reads, operator controls, admin also manages users."""

from __future__ import annotations

import pytest

from relmgr.auth.roles import Permission, Role, allows, authorize, parse_role, role_of
from relmgr.auth.users import User
from relmgr.errors import ForbiddenError

_HASH = "$2b$04$" + "a" * 53


def _user(*roles: str) -> User:
    return User(username="ana", email="ana@example.com", name="Ana", password=_HASH, roles=roles)


@pytest.mark.parametrize(
    ("roles", "role", "granted"),
    [
        (("viewer",), Role.VIEWER, {Permission.READ}),
        (("operator",), Role.OPERATOR, {Permission.READ, Permission.CONTROL}),
        (("admin",), Role.ADMIN, set(Permission)),
        (("viewer", "admin"), Role.ADMIN, set(Permission)),
        (("root", "superuser"), Role.VIEWER, {Permission.READ}),
        ((), Role.VIEWER, {Permission.READ}),
    ],
)
def test_role_is_the_highest_known_and_grants_its_permissions(
    roles: tuple[str, ...], role: Role, granted: set[Permission]
) -> None:
    """Unknown role names grant nothing beyond reading; the highest known role counts."""
    user = _user(*roles)
    assert role_of(user) is role
    assert {p for p in Permission if allows(user, p)} == granted


def test_authorize_refuses_with_the_role_needed() -> None:
    """A viewer asking to control is told which role it needs; an operator passes."""
    with pytest.raises(ForbiddenError) as refused:
        authorize(_user("viewer"), Permission.CONTROL)
    assert refused.value.message == (
        "ana has the viewer role; control needs the operator role or higher"
    )
    assert refused.value.role == "viewer"
    assert authorize(_user("operator"), Permission.CONTROL) is Role.OPERATOR
    with pytest.raises(ForbiddenError, match="manage users needs the admin role"):
        authorize(_user("operator"), Permission.MANAGE_USERS)


def test_parse_role_names_the_roles() -> None:
    """`relmgr users add --role` accepts the three roles only."""
    assert parse_role("operator") is Role.OPERATOR
    with pytest.raises(
        ValueError, match="'root' is not a role; use one of viewer, operator, admin"
    ):
        parse_role("root")
