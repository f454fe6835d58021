"""RedisExpiryWatcher: hear a worker's liveness key expire, so that the sweeper recovers its task at once.

A worker's liveness key (its id, in the root keyspace) expires ``keep_alive_timeout`` seconds after its
last keep-alive. With ``notify-keyspace-events`` containing ``E`` (keyevent notifications) and ``x``
(expired keys), Redis publishes the name of every key it expires on ``__keyevent@<db>__:expired``; the
watcher subscribes to that channel and answers "sweep now" for each name shaped like a worker id.

What it does not know, and why that is fine:

- Which queue the dead worker served: the id alone does not say. The sweep loop sweeps every queue it
  serves, one script call each, which costs about what looking the id up in each ``N_processing`` would.
- What happened while it was disconnected: events are not queued for absent subscribers. After every
  (re)subscription it answers "sweep now" once, and the periodic sweep remains for anything else missed.

The server's setting is checked on every (re)subscription, because a restarted Redis reads it back from
its configuration file. Where expiry events are off, the watcher turns them on with ``CONFIG SET`` (adding
``Ex`` to the flags already set, never removing one) when it may; otherwise it logs once the command an
operator should run.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shlex
import time

import redis

from delayed_core.backoff import Backoff
from delayed_core.interfaces.lost_workers import LostWorkerWatcher

from .errors import describe

logger = logging.getLogger("delayed.sweeper")

SETTING = "notify-keyspace-events"

#: Worker ids: 32 lowercase hex chars (pydelayed, go-delayed, delayed 1.0) or a decimal number below
#: 65536 (delayed 1.2). Other expiring keys (a cache sharing the database) are no news of a dead worker.
WORKER_ID = re.compile(rb"[0-9a-f]{32}|[0-9]{1,5}")

#: Seconds of silence after which the watcher PINGs its subscription (a half-open connection otherwise
#: looks like a quiet one), and how long it waits for the answer before reconnecting.
PING_AFTER = 30.0
PONG_WITHIN = 10.0

#: A subscription that lived this long was healthy: the next loss starts the backoff afresh.
STABLE_AFTER = 10.0


def expired_events_on(flags: str) -> bool:
    """True when ``notify-keyspace-events`` flags publish expired keys on the keyevent channel."""
    # "A" is an alias for every key-space class, "x" included.
    return "E" in flags and ("x" in flags or "A" in flags)


def with_expired_events(flags: str) -> str:
    """``flags`` plus ``E`` and ``x``: every flag already set is kept."""
    return "".join(dict.fromkeys(flags + "Ex"))


def enable_command(flags: str) -> str:
    """The command an operator runs to turn expiry events on without dropping ``flags``."""
    return f"redis-cli CONFIG SET {SETTING} {shlex.quote(with_expired_events(flags))}"


def _refusal(exc: redis.exceptions.ResponseError) -> bool:
    """An ACL without the command or channel, or a server that renamed or disabled the command (managed
    services rename CONFIG; proxies may lack pub/sub)."""
    return isinstance(exc, redis.exceptions.NoPermissionError) or "unknown command" in str(exc).lower()


class RedisExpiryWatcher(LostWorkerWatcher):
    """Subscribes lazily, on the first wait, to the expired-key events of the client's database.

    :param client: the sweeper's client; the subscription takes one connection of its pool.
    :param enable: turn expiry events on with ``CONFIG SET`` where they are off and the user may.
    """

    def __init__(self, client: redis.Redis, enable: bool = True) -> None:
        self._client = client
        self._enable = enable
        db = client.connection_pool.connection_kwargs.get("db", 0)
        self.channel = f"__keyevent@{db}__:expired"
        self._pubsub: redis.client.PubSub | None = None
        self._backoff = Backoff()
        self._retry_at = 0.0
        self._connected_at = 0.0
        self._last_heard = 0.0
        self._ping_sent: float | None = None
        self._refused = False  # SUBSCRIBE refused: there is nothing to hear, periodic sweeps only
        self._told = False  # the one-line notice about the server's setting was logged

    # -- LostWorkerWatcher -------------------------------------------------------------------------
    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout``; True when a worker id expired, or right after (re)subscribing."""
        deadline = time.monotonic() + max(0.0, timeout)
        if self._pubsub is None:
            resume = deadline if self._refused else self._retry_at
            if time.monotonic() < resume:
                time.sleep(max(0.0, min(deadline, resume) - time.monotonic()))
                return False
            return self._subscribe()
        try:
            return self._listen(deadline)
        except (redis.exceptions.RedisError, OSError) as exc:
            self._lost(describe(exc))
            return False

    def close(self) -> None:
        """Unsubscribe and give the connection back."""
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            with contextlib.suppress(redis.exceptions.RedisError, OSError):
                pubsub.close()

    # -- subscribing ------------------------------------------------------------------------------
    def _subscribe(self) -> bool:
        try:
            self._check_setting()
            self._pubsub = self._client.pubsub()
            self._pubsub.subscribe(self.channel)
            # Read the confirmation now: a refusal (an ACL without this channel) arrives as its reply.
            confirmation = self._pubsub.get_message(timeout=5.0)
            if confirmation is None or confirmation.get("type") != "subscribe":
                raise redis.exceptions.TimeoutError(f"no confirmation of SUBSCRIBE {self.channel}")
        except redis.exceptions.ResponseError as exc:
            if not _refusal(exc):  # BUSY and the like: retried
                self._lost(describe(exc))
                return False
            # An ACL without this channel, or a proxy without pub/sub: asking again would not help.
            self.close()
            self._refused = True
            logger.warning("cannot subscribe to %s (%s): a dead worker's task waits for the periodic sweep",
                           self.channel, describe(exc))
            return False
        except (redis.exceptions.RedisError, OSError) as exc:
            self._lost(describe(exc))
            return False
        now = time.monotonic()
        self._connected_at = self._last_heard = now
        self._ping_sent = None
        logger.debug("listening to %s", self.channel)
        # Expiries while nobody listened were not heard: the caller sweeps once to catch up.
        return True

    def _check_setting(self) -> None:
        """Turn expiry events on if they are off and allowed; else say once what an operator should run."""
        try:
            flags = str(self._client.config_get(SETTING).get(SETTING, ""))
        except redis.exceptions.ResponseError as exc:
            if not _refusal(exc):
                raise  # BUSY and the like: retried with the subscription
            self._notice(f"cannot read {SETTING} ({describe(exc)}); if expiry events are off, a dead "
                         f"worker's task waits for the periodic sweep; to recover it at once, an admin can "
                         f"run `{enable_command('')}`")
            return
        if expired_events_on(flags):
            return
        if not self._enable:
            self._notice(f"expiry events are off ({SETTING} {flags!r}): a dead worker's task waits for the "
                         f"periodic sweep; to recover it at once, run `{enable_command(flags)}`")
            return
        try:
            self._client.config_set(SETTING, with_expired_events(flags))
        except redis.exceptions.ResponseError as exc:
            self._notice(f"expiry events are off ({SETTING} {flags!r}) and this user may not turn them on "
                         f"({describe(exc)}): a dead worker's task waits for the periodic sweep; to recover "
                         f"it at once, run `{enable_command(flags)}`")
            return
        logger.info("turned expiry events on (CONFIG SET %s %s, was %r); set it in redis.conf too",
                    SETTING, with_expired_events(flags), flags)

    def _notice(self, text: str) -> None:
        if not self._told:
            self._told = True
            logger.warning("%s", text)

    # -- listening --------------------------------------------------------------------------------
    def _listen(self, deadline: float) -> bool:
        assert self._pubsub is not None
        self._check_alive()
        while True:
            message = self._pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is not None:
                self._last_heard = time.monotonic()
                self._ping_sent = None
                if self._is_worker_expiry(message):
                    self._drain()
                    return True
            if message is None or time.monotonic() >= deadline:
                return False

    def _drain(self) -> None:
        """Swallow the expiries already received: the slots of one worker expire together, one sweep
        recovers them all."""
        assert self._pubsub is not None
        for _ in range(10_000):
            if self._pubsub.get_message(timeout=0.0) is None:
                return

    def _check_alive(self) -> None:
        """PING a subscription silent for long; a PING left unanswered means the connection is dead."""
        assert self._pubsub is not None
        now = time.monotonic()
        if self._ping_sent is not None and now - self._ping_sent > PONG_WITHIN:
            raise redis.exceptions.TimeoutError(f"no answer to PING within {PONG_WITHIN:g}s")
        if self._ping_sent is None and now - self._last_heard > PING_AFTER:
            self._pubsub.ping()
            self._ping_sent = now

    @staticmethod
    def _is_worker_expiry(message: dict[str, object]) -> bool:
        data = message.get("data")
        return message.get("type") == "message" and isinstance(data, bytes) and bool(WORKER_ID.fullmatch(data))

    def _lost(self, reason: str) -> None:
        if self._connected_at and time.monotonic() - self._connected_at > STABLE_AFTER:
            self._backoff.reset()
        self._connected_at = 0.0
        self.close()
        delay = self._backoff.next_delay()
        self._retry_at = time.monotonic() + delay
        logger.error("expiry events: subscription lost (%s); subscribing again in %.1fs (periodic sweeps go on)",
                     reason, delay)
