"""The per-thread hot-path caller packs commands itself: the same bytes as redis-py, the same replies."""

from __future__ import annotations

import hiredis
import pytest
import redis

from delayed_redis import direct
from delayed_redis.direct import DirectCaller
from tests.support.redis_server import RedisServer


@pytest.mark.real_redis
def test_calls_and_repeated_calls_reply_as_redis_py_does(real_redis: RedisServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    client = real_redis.client()
    caller = DirectCaller(client.connection_pool)
    assert caller("RPUSH", "l", b"a", "b", 3, 1.5) == 4
    assert caller("LRANGE", "l", 0, -1) == client.lrange("l", 0, -1) == [b"a", b"b", b"3", b"1.5"]
    assert caller("SET", "k", bytearray(b"v")) == b"OK"  # a type only redis-py converts: its packer is used
    assert client.get("k") == b"v"
    with pytest.raises(redis.exceptions.DataError):
        caller("SET", "k", None)  # refused as redis-py refuses it
    assert caller("GET", "k") == b"v"  # the connection is still usable

    monkeypatch.setattr(direct, "REPEATED_KEPT", 3)
    for round_ in range(2):
        for i in range(5):  # more distinct commands than kept: the cache starts again, replies stay right
            assert caller.repeated("HSET", "h", f"f{i}", round_) == (1 if round_ == 0 else 0)
    assert len(caller._packed) <= 3
    assert all(packed == hiredis.pack_command(args) for args, packed in caller._packed.items())
    assert client.hgetall("h") == {f"f{i}".encode(): b"1" for i in range(5)}
    caller.close()
