"""Bearer tokens: HS256 JWTs signed with `RELMGR_JWT_SECRET`; nothing but HS256 is accepted.

Each token carries a random `jti` (what `POST /api/auth/logout` revokes) and its user's session
epoch `ep` (`relmgr.auth.users.session_epoch`): both are checked on every use, in
`deps.current_user`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import jwt

from relmgr.auth.sessions import is_jti, new_jti
from relmgr.auth.users import User, session_epoch
from relmgr.settings import Settings, check_secret

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti", "ep")
# A few seconds of tolerance for replicas whose clocks differ slightly.
LEEWAY_SECONDS = 5


class TokenProblem(StrEnum):
    """Why a token was refused (for the audit log and the error code, never echoing the token)."""

    MISSING = "missing"
    MALFORMED = "malformed"
    EXPIRED = "expired"
    BAD_SIGNATURE = "bad_signature"
    BAD_ALGORITHM = "bad_algorithm"
    BAD_CLAIMS = "bad_claims"
    UNKNOWN_USER = "unknown_user"
    REVOKED = "revoked"
    STALE_SESSION = "stale_session"  # the user's password, roles or generation changed since


class TokenRejectedError(Exception):
    """A token that must not be honoured, and why."""

    def __init__(self, problem: TokenProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly signed token and its lifetime."""

    access_token: str
    expires_in: int
    jti: str


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified claims of a token."""

    subject: str
    jti: str
    epoch: str
    issued_at: int
    expires_at: int


class TokenService:
    """Signs and verifies the API's bearer tokens."""

    def __init__(self, secret: str, *, lifetime_minutes: int) -> None:
        self._secret = secret
        self.lifetime_seconds = lifetime_minutes * 60

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenService:
        """A token service, or ConfigError if the secret is missing, short or a placeholder."""
        secret = check_secret("jwt_secret", settings.jwt_secret, dev_mode=settings.dev_mode)
        return cls(secret, lifetime_minutes=settings.token_minutes)

    def issue(self, user: User, *, now: float | None = None) -> IssuedToken:
        """A signed token for `user`, valid for the configured lifetime."""
        issued = int(now if now is not None else time.time())
        jti = new_jti()
        claims = {
            "sub": user.username,
            "iat": issued,
            "exp": issued + self.lifetime_seconds,
            "jti": jti,
            "ep": session_epoch(user),
        }
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return IssuedToken(access_token=token, expires_in=self.lifetime_seconds, jti=jti)

    def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; TokenRejectedError saying why otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejectedError(TokenProblem.MALFORMED) from None
        # Checked before decoding so the audit log can tell `alg: none` from a bad signature;
        # decode() below pins the algorithm too, which is what actually protects us.
        if header.get("alg") != ALGORITHM:
            raise TokenRejectedError(TokenProblem.BAD_ALGORITHM)
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                options={"require": list(REQUIRED_CLAIMS)},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejectedError(TokenProblem.EXPIRED) from None
        except jwt.InvalidSignatureError:
            raise TokenRejectedError(TokenProblem.BAD_SIGNATURE) from None
        except jwt.DecodeError:
            raise TokenRejectedError(TokenProblem.MALFORMED) from None
        except jwt.PyJWTError:
            raise TokenRejectedError(TokenProblem.BAD_CLAIMS) from None
        subject, jti, epoch = claims.get("sub"), claims.get("jti"), claims.get("ep")
        issued, expires = claims.get("iat"), claims.get("exp")
        if not (isinstance(subject, str) and is_jti(jti) and isinstance(epoch, str)):
            raise TokenRejectedError(TokenProblem.BAD_CLAIMS)
        if not (isinstance(issued, int) and isinstance(expires, int)):
            raise TokenRejectedError(TokenProblem.BAD_CLAIMS)
        return TokenClaims(
            subject=subject, jti=jti, epoch=epoch, issued_at=issued, expires_at=expires
        )
