"""Pseudonyms for the identifiers that ``medgan preprocess --pseudonymise`` would otherwise write.

A pseudonym is a keyed hash (HMAC-SHA256) of the identifier under a secret key, cut to 16 hex
digits: ``P-3f9a...`` for a patient, ``S-...`` for a source path. Hospital identifiers come from
small, guessable spaces (an 8-digit record number has 10^8 values), so a plain or publicly salted
hash is reversed by trying them all; a keyed hash is not, as long as the key stays secret. The key
is therefore never written into anything medgan produces:

- by default it is 32 random bytes, used for one run and forgotten: nobody, the user included,
  can link a pseudonym back to a patient;
- with a key file (``--pseudonym-key FILE``), created on first use (mode 600) and reused after, the
  same patient gets the same pseudonym in every dataset made with that file, and whoever holds the
  file can recompute a patient's pseudonym (it cannot be inverted, only matched).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from medgan.errors import MedganError

__all__ = ["Pseudonymiser"]

_KEY_BYTES = 32


class Pseudonymiser:
    """Keyed, one-way pseudonyms: the same identifier and key always give the same pseudonym.

    Args:
        key: the secret; ``None`` draws 32 random bytes (the pseudonyms of one run only).

    Example:
        >>> p = Pseudonymiser(b"0" * 32)
        >>> p.patient("12345678") == p.patient(" 12345678 ") != Pseudonymiser(b"1" * 32).patient("12345678")
        True
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(_KEY_BYTES)

    @classmethod
    def from_key_file(cls, path: str | Path) -> Pseudonymiser:
        """The key in ``path`` (64 hex digits); a missing file is created with a fresh key, readable by its owner only.

        Raises:
            MedganError: a file that does not hold a key, or one that cannot be read or written.
        """
        p = Path(path).expanduser()
        if p.is_file():
            try:
                text = p.read_text().strip()
                key = bytes.fromhex(text)
            except (OSError, ValueError, UnicodeDecodeError):
                raise MedganError("not a medgan pseudonym key file (expected 64 hex digits)", p) from None
            if len(key) != _KEY_BYTES:
                raise MedganError(
                    f"pseudonym key must be {_KEY_BYTES} bytes (64 hex digits), found {len(key)}", p
                )
            return cls(key)
        if p.exists():
            raise MedganError("pseudonym key path exists and is not a file", p)
        key = secrets.token_bytes(_KEY_BYTES)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(key.hex() + "\n")
        except OSError as exc:
            raise MedganError(f"cannot create the pseudonym key file ({exc.strerror or exc})", p) from None
        return cls(key)

    def _digest(self, kind: str, value: str) -> str:
        mac = hmac.new(self._key, f"{kind}\0{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:16]

    def patient(self, patient_id: str) -> str:
        """``P-<16 hex>``, the pseudonym of a patient ID (surrounding blanks ignored)."""
        return f"P-{self._digest('patient', patient_id.strip())}"

    def source(self, relative_path: str) -> str:
        """``S-<16 hex>``, the pseudonym of a source file or folder (its path relative to the source folder)."""
        return f"S-{self._digest('source', relative_path)}"
