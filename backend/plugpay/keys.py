"""One key per purpose, derived from ``PLUGPAY_SECRET_KEY``.

A key that signs cookies should not also sign CSRF tokens or demo payments:
a flaw or a leak in one use would then reach every other. HKDF (RFC 5869)
gives independent keys from the one secret, so operators keep a single
variable to set and rotate.
"""

from __future__ import annotations

import base64
from typing import Final, Literal, get_args

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KeyPurpose = Literal["cookies", "csrf", "capability", "demo-signatures", "job-tokens", "sign-in"]
PURPOSES: Final[frozenset[str]] = frozenset(get_args(KeyPurpose))
KEY_BYTES: Final = 32
# Fixed, public and versioned: changing it changes every key, so it never changes silently.
_SALT: Final = b"plugpay key derivation v1"


def derive_key(secret: str, purpose: str) -> bytes:
    """The 32-byte key for ``purpose``; the same secret and purpose give the same key."""
    if purpose not in PURPOSES:
        # A misspelt purpose would quietly mint a key nothing else checks against.
        raise ValueError(f"unknown key purpose {purpose!r}")
    if not secret:
        raise ValueError("the secret must not be empty")
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=_SALT,
        info=b"plugpay:" + purpose.encode("ascii"),
    )
    return hkdf.derive(secret.encode("utf-8"))


def derive_key_text(secret: str, purpose: str) -> str:
    """The same key as unpadded base64url text, for APIs that take a string secret."""
    return base64.urlsafe_b64encode(derive_key(secret, purpose)).rstrip(b"=").decode("ascii")
