"""The HMAC key that protects identity, card and bank numbers."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from jobs.config import HashingConfig
from resolution.errors import ConfigError

logger = logging.getLogger(__name__)

# Public on purpose: it lets the demo and tests run without set-up. Hashes made with it protect
# nothing against someone who has this source; production runs must set their own key.
DEMO_KEY = b"seller-er demo key: not a secret, never use outside local demos"


def load_hash_key(config: HashingConfig) -> bytes:
    """The key from `$<key_env>`, else from `key_file`, else the demo key if allowed."""
    from_env = os.environ.get(config.key_env)
    if from_env:
        return from_env.encode("utf-8")
    if config.key_file:
        path = Path(config.key_file)
        if not path.is_file():
            raise ConfigError(f"hashing.key_file: {path} not found")
        key = path.read_bytes().strip()
        if not key:
            raise ConfigError(f"hashing.key_file: {path} is empty")
        return key
    if not config.allow_demo_key:
        raise ConfigError(
            f"no hashing key: set ${config.key_env} or hashing.key_file "
            "(hashing.allow_demo_key is false)"
        )
    logger.warning("hashing with the public demo key: set $%s for real data", config.key_env)
    return DEMO_KEY
