"""Identifier generation."""

from __future__ import annotations

import os
import threading
import time
import uuid

__all__ = ["new_id", "uuid7"]

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """Return a time-ordered UUID (version 7, RFC 9562).

    Ids generated in one process are strictly increasing: within one millisecond a
    12-bit counter (seeded randomly) orders them. Time-ordered ids keep B-tree inserts
    at the right edge of the index, which is much cheaper than random UUIDs for
    append-heavy tables such as events and outbox.
    """
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand
    return uuid.UUID(int=value)


def new_id() -> str:
    """Return a new time-ordered id as a string (a UUID version 7)."""
    return str(uuid7())
