"""RESP, the Redis protocol, packed by hand for the few hot-path commands that keep most of their bytes
from one call to the next (see ``tracking.release_one_command``): the same bytes a client library would
send, without formatting the unchanging arguments on every call."""

from __future__ import annotations

from collections.abc import Iterable


def array_head(count: int) -> bytes:
    """The head of a command of ``count`` arguments."""
    return b"*%d\r\n" % count


def bulk(value: bytes) -> bytes:
    """One argument, as bytes."""
    return b"$%d\r\n%b\r\n" % (len(value), value)


def bulks(values: Iterable[str | bytes | int]) -> bytes:
    """Arguments as Redis clients send them: text in UTF-8, integers in decimal."""
    return b"".join(bulk(value if isinstance(value, bytes) else str(value).encode()) for value in values)
