"""Loading the Lua scripts in ``lua/`` and calling them by SHA, loading them again on NOSCRIPT.

Every script is sent with ``lua/_prelude.lua`` in front of it: the key type checks and the server clock
that several scripts share.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis


@dataclass(frozen=True)
class Script:
    """One Lua script and its SHA1."""

    name: str
    source: str
    sha: str

    def __call__(self, call: Callable[..., Any], keys: tuple[str, ...], args: tuple[Any, ...]) -> Any:
        """Run with EVALSHA; on NOSCRIPT (a restarted or flushed server) load it and run again once.

        :param call: sends one command and returns its reply (``client.execute_command`` or a
            :class:`~delayed_redis.direct.DirectCaller`).
        """
        try:
            return call(*self.command(keys, args))
        except redis.exceptions.NoScriptError:
            call("SCRIPT", "LOAD", self.source)
            return call(*self.command(keys, args))

    def call_packed(self, call: Any, command: bytes) -> Any:
        """Run this script's EVALSHA already packed as RESP (``command``) through a
        :class:`~delayed_redis.direct.DirectCaller`; on NOSCRIPT load it and send it again once."""
        try:
            return call.packed(command)
        except redis.exceptions.NoScriptError:
            call("SCRIPT", "LOAD", self.source)
            return call.packed(command)

    def command(self, keys: tuple[str, ...], args: tuple[Any, ...]) -> tuple[Any, ...]:
        """The EVALSHA command, for a pipeline."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    async def call_async(self, client: Any, keys: tuple[str, ...], args: tuple[Any, ...]) -> Any:
        """The same with a redis.asyncio client."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


def ms(seconds: float) -> int:
    """Seconds as the whole milliseconds scripts take (at least 1: a TTL or delay of 0 means none)."""
    return max(1, int(seconds * 1000))


@functools.cache  # the prelude and the helpers go in front of many scripts: each file is read once
def _read(name: str) -> str:
    return (resources.files("delayed_redis") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def load_script(name: str, helpers: tuple[str, ...] = ()) -> Script:
    """Read ``lua/<name>.lua``, with the prelude in front, then the ``helpers`` (``lua/_record.lua`` ...)."""
    source = _read("_prelude") + "".join(_read(helper) for helper in helpers) + _read(name)
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


ENQUEUE = load_script("enqueue")
ENQUEUE_BOUNDED = load_script("enqueue_bounded")
THROTTLE = load_script("throttle")
PERIODIC_CLAIM = load_script("periodic_claim")
DEQUEUE = load_script("dequeue")
RELEASE_TAKE = load_script("release_take")
DEQUEUE_FIRST = load_script("dequeue_first")
RELEASE_TAKE_FIRST = load_script("release_take_first")
REQUEUE = load_script("requeue")
DEAD_LETTER = load_script("dead_letter")
PROMOTE = load_script("promote")
SWEEP = load_script("sweep")
BURY = load_script("bury")
REVIVE = load_script("revive")
SCHEDULE = load_script("schedule")
CLAIM = load_script("claim")
KEEP_ALIVE = load_script("keep_alive")
ANNOUNCE = load_script("announce")
TAKE = load_script("take")
