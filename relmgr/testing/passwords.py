"""bcrypt at its cheapest cost, for the users files of tests about signing in, not about hashing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from relmgr.auth import users

CHEAPEST_COST = 4  # bcrypt's minimum: a hash or a check takes about 1 ms instead of 0.3 s


@contextlib.contextmanager
def cheap_bcrypt() -> Iterator[None]:
    """Inside the block, `add_user` and `hash_password` hash at bcrypt's cheapest cost; checking
    a password then costs as little, since a check runs at its hash's cost. The product's own
    cost is asserted by tests/auth/test_users.py, which does not use this."""
    rounds = users.BCRYPT_ROUNDS
    users.BCRYPT_ROUNDS = CHEAPEST_COST
    try:
        yield
    finally:
        users.BCRYPT_ROUNDS = rounds
