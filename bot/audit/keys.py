"""Ed25519 keys that sign and check evidence bundles, read from the environment or a file."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.errors import ConfigError

SIGNING_KEY_ENV = "FIREBREAK_AUDIT_SIGNING_KEY"


def load_signing_key(value: str | None) -> Ed25519PrivateKey | None:
    """An Ed25519 private key from PEM (PKCS#8) or base64 of the raw 32-byte key."""
    if value is None or not value.strip():
        return None
    try:
        return parse_signing_key(value)
    except ValueError as exc:
        raise ConfigError(f"{SIGNING_KEY_ENV}: {exc}") from None


def parse_signing_key(value: str) -> Ed25519PrivateKey:
    """The key in ``value``; ValueError saying what is wrong with it (the settings check it at
    start-up with this, so a bad key stops every command before anything runs)."""
    text = value.strip()
    try:
        if "BEGIN" in text:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError):
        raise ValueError(
            "not an Ed25519 private key (give PEM or base64 of the 32 raw bytes)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the key is not an Ed25519 key")
    return key


def load_public_key(value: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM, base64 of the raw 32 bytes, or a file holding either."""
    text = value.strip()
    path = Path(text)
    if "BEGIN" not in text and len(text) < 4096 and path.is_file():
        text = path.read_text(encoding="utf-8").strip()
    try:
        if "BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError):
        raise ConfigError(
            "--public-key: not an Ed25519 public key (PEM, base64 of 32 bytes, or a file)"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("--public-key: the key is not an Ed25519 key")
    return key


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()
