"""The HMAC key that protects identity, card and bank numbers."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from jobs.config import HashingConfig
from resolution.errors import ConfigError

logger = logging.getLogger(__name__)

# Public on purpose: it lets the demo and tests run without set-up. Hashes made with it protect
# nothing against someone who has this source; production runs must set their own key.
DEMO_KEY = b"seller-er demo key: not a secret, never use outside local demos"

# Spark's local mode: `local`, `local[4]`, `local[*]`, `local[4,2]` (retries). `local-cluster[..]`
# starts real executor processes, as a cluster does, so it is not local here.
_LOCAL_MASTER = re.compile(r"local(\[[^\]]*\])?")


def is_local_master(master: str) -> bool:
    """True when the Spark master URL `master` runs everything in this one process."""
    return _LOCAL_MASTER.fullmatch(master.strip()) is not None


def load_hash_key(config: HashingConfig, *, master: str) -> bytes:
    """The key from `$<key_env>`, else from `key_file`, else the demo key if allowed.

    `master` is the Spark master the job runs on (`spark.sparkContext.master`): outside local
    mode the public demo key is refused, whatever `allow_demo_key` says, so data on a cluster
    is never hashed with a key anyone can read in this file.

    Example::

        key = load_hash_key(config.hashing, master=spark.sparkContext.master)
    """
    from_env = os.environ.get(config.key_env)
    if from_env:
        key, source = from_env.encode("utf-8"), f"${config.key_env}"
    elif config.key_file:
        path = Path(config.key_file)
        if not path.is_file():
            raise ConfigError(f"hashing.key_file: {path} not found")
        key = path.read_bytes().strip()
        if not key:
            raise ConfigError(f"hashing.key_file: {path} is empty")
        source = f"hashing.key_file {path}"
    elif not config.allow_demo_key:
        raise ConfigError(
            f"no hashing key: set ${config.key_env} or hashing.key_file "
            "(hashing.allow_demo_key is false)"
        )
    else:
        key, source = DEMO_KEY, None
    if key == DEMO_KEY and not is_local_master(master):
        held = "" if source is None else f" (held by {source})"
        raise ConfigError(
            f"hashing: the public demo key{held} is refused on Spark master {master!r}, which is "
            f"not local mode: set ${config.key_env} or hashing.key_file to a secret key"
        )
    if key == DEMO_KEY:
        logger.warning("hashing with the public demo key: set $%s for real data", config.key_env)
    return key
