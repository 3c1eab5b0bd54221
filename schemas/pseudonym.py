"""Keyed pseudonyms (HMAC-SHA256 under a versioned key) and masked display forms."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from schemas.errors import ConfigurationError

MIN_KEY_BYTES = 32
_SHA256_BLOCK_BYTES = 64
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


class SecretBytes:
    """Key material that never shows itself in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def get_secret_value(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "SecretBytes('**********')"

    __str__ = __repr__


class _HmacSha256:
    """HMAC-SHA256 (RFC 2104) under one key, the padded key blocks hashed once, not per call."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _SHA256_BLOCK_BYTES:
            key = hashlib.sha256(key).digest()
        block = key.ljust(_SHA256_BLOCK_BYTES, b"\0")
        self._inner = hashlib.sha256(block.translate(_INNER_PAD))
        self._outer = hashlib.sha256(block.translate(_OUTER_PAD))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


class KeyFileError(ConfigurationError):
    """The pseudonym key file is unusable: a configuration error, fix it and restart."""


class Pseudonymiser:
    """Turns identity documents into stable pseudonyms; the active key signs new ones."""

    def __init__(self, keys: Mapping[str, SecretBytes | bytes], active_key_id: str) -> None:
        self._keys = {
            key_id: key.get_secret_value() if isinstance(key, SecretBytes) else bytes(key)
            for key_id, key in keys.items()
        }
        if active_key_id not in self._keys:
            raise ValueError(f"active key {active_key_id!r} is not among the keys given")
        for key_id, key in self._keys.items():
            if len(key) < MIN_KEY_BYTES:
                raise ValueError(f"key {key_id!r} is shorter than {MIN_KEY_BYTES} bytes")
        self.key_id = active_key_id
        self._macs = {key_id: _HmacSha256(key) for key_id, key in self._keys.items()}
        self._active = self._macs[active_key_id]

    def person(self, id_type: str, id_number: str) -> str:
        """Hex HMAC of "id_type:ID" (upper-cased, trimmed) under the active key."""
        return self._active.hexdigest(f"{id_type}:{id_number.strip().upper()}".encode())

    def person_under(self, key_id: str, id_type: str, id_number: str) -> str:
        """The pseudonym under an older key: lets a key rotation map old pseudonyms to new."""
        message = f"{id_type}:{id_number.strip().upper()}".encode()
        return self._macs[key_id].hexdigest(message)

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def __repr__(self) -> str:
        return f"Pseudonymiser(active={self.key_id!r}, keys={list(self._keys)!r})"


def load_key_file(path: str | Path) -> Pseudonymiser:
    """Read "key_id:hexkey" lines ('#' comments allowed); the last key listed is the active one.

    Rotation appends a line, so older keys stay available to `person_under`.
    """
    keys: dict[str, SecretBytes] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise KeyFileError(f"cannot read pseudonym key file {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key_id, sep, hex_key = line.partition(":")
        try:
            if not sep or not key_id:
                raise ValueError
            keys[key_id.strip()] = SecretBytes(bytes.fromhex(hex_key.strip()))
        except ValueError:
            # The line is not echoed: it holds key material.
            raise KeyFileError(f"{path}, line {number}: expected key_id:hexkey") from None
    if not keys:
        raise KeyFileError(f"{path} holds no key")
    try:
        return Pseudonymiser(keys, active_key_id=list(keys)[-1])
    except ValueError as exc:
        raise KeyFileError(f"{path}: {exc}") from None


def mask_id_number(s: str) -> str:
    """First 4 and last 2 characters kept, e.g. "3301************3X" for 18 characters.

    Fewer kept characters than the common 4+4 form: the sequence digits would narrow a
    brute-force search of the hidden birth date to a handful of candidates.
    """
    if len(s) <= 6:
        return "*" * len(s)
    return f"{s[:4]}{'*' * (len(s) - 6)}{s[-2:]}"  # one string built, not two


NAME_MASK_STARS = "**"


def mask_name(s: str) -> str:
    """First character kept (the surname, for most Chinese names), then two stars, always.

    The same length whatever the name's: a mask that kept it would tell a 2-character name
    from a 3-character one, narrowing who it can be.
    """
    s = s.strip()
    if not s:
        return ""
    return s[0] + NAME_MASK_STARS


def mask_phone(s: str) -> str:
    """Mainland mobile numbers as "138****1234"; other numbers keep their last 2 digits."""
    digits = s.strip()
    if len(digits) == 11 and digits[0] == "1" and digits.isdigit():
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) <= 2:
        return "*" * len(digits)
    return f"{'*' * (len(digits) - 2)}{digits[-2:]}"
