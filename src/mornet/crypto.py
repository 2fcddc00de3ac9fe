"""Private keys at rest: AES-256-GCM under the master key, bound to their owner and address."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class WalletCipher:
    def __init__(self, master_key_b64: str) -> None:
        key = base64.b64decode(master_key_b64, validate=True)
        if len(key) != 32:
            raise ValueError("the wallet master key must be 32 bytes")
        self._aead = AESGCM(key)

    def encrypt(self, private_key: bytes, *, binding: str) -> bytes:
        """nonce ‖ ciphertext+tag. `binding` (owner and address) is authenticated, so a
        ciphertext copied onto another wallet row does not decrypt."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, private_key, binding.encode())

    def decrypt(self, blob: bytes, *, binding: str) -> bytes:
        return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], binding.encode())
