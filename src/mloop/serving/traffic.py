"""Traffic split between a champion and a challenger: sticky by key, the same in every worker.

A request with an `x-mloop-key` header goes to the challenger when
`int(blake3(key)[:8]) mod 10000 < share * 10000`, so a key always lands on the same side in every
process; a request with no key is routed at random with the same probability.
"""

from __future__ import annotations

import random

from blake3 import blake3

BUCKETS = 10_000


def bucket(key: str) -> int:
    """The key's bucket in [0, 10000): the first 8 bytes of blake3(key), little-endian, mod 10000."""
    return int.from_bytes(blake3(key.encode()).digest()[:8], "little") % BUCKETS


def to_challenger(key: str | None, share: float, rng: random.Random | None = None) -> bool:
    """Whether this request goes to the challenger."""
    if share <= 0:
        return False
    if key is None:
        return (rng or random).random() < share
    return bucket(key) < share * BUCKETS
