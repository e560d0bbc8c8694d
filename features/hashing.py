"""Keyed hashing of sensitive numbers (identity, card, bank account) with native Spark.

HMAC-SHA256 (RFC 2104) built from Spark's `sha2`: Spark has no `hmac` function, and a Python UDF
would move every raw number through a Python worker. The key is padded and XOR-ed with ipad
and opad on the driver (it is a few bytes), so executors see only the padded key literals.
"""

from __future__ import annotations

import hashlib

from pyspark.sql import Column
from pyspark.sql import functions as F

_BLOCK_SIZE = 64  # SHA-256 block size in bytes


def _padded_keys(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > _BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK_SIZE, b"\x00")
    inner = bytes(byte ^ 0x36 for byte in key)
    outer = bytes(byte ^ 0x5C for byte in key)
    return inner, outer


def hmac_sha256_hex(message: Column, *, key: bytes) -> Column:
    """HMAC-SHA256 of the UTF-8 bytes of `message` as 64 lower-case hex characters.

    Null in, null out. Equal to `hmac.new(key, message.encode(), "sha256").hexdigest()`.
    """
    if not key:
        raise ValueError("hmac_sha256_hex: the key must not be empty")
    inner_key, outer_key = _padded_keys(key)
    inner = F.sha2(F.concat(F.lit(bytearray(inner_key)), message.cast("binary")), 256)
    return F.sha2(F.concat(F.lit(bytearray(outer_key)), F.unhex(inner)), 256)
