"""Malformed task bytes: the msgpack serializer refuses them with TaskDecodeError and a one-line reason.

The reasons end up in dead letters and log lines, so each case also checks that the reason says what
was wrong (not just that something was).
"""

from __future__ import annotations

import msgpack
import pytest

from delayed_core.errors import TaskDecodeError
from delayed_core.task import GoTask, PyTask
from delayed_plugins.msgpack_serializer import MsgpackSerializer

serializer = MsgpackSerializer()
VALID = msgpack.packb(["mod:func", [1, 2], {"c": 3}])

MALFORMED: dict[str, tuple[bytes, str]] = {
    # case: (bytes, fragment the reason must contain)
    "empty input": (b"", "not valid msgpack"),
    "never-used msgpack byte": (b"\xc1", "not valid msgpack"),
    "truncated": (VALID[:-1], "not valid msgpack"),
    "trailing garbage": (VALID + b"\x00", "not valid msgpack"),
    "plain text": (b"hello world", "not valid msgpack"),
    "non-UTF-8 path": (b"\x91\xa2\xff\xfe", "UnicodeDecodeError"),
    "empty array": (msgpack.packb([]), "non-empty msgpack array"),
    "integer": (msgpack.packb(7), "got int"),
    "nil": (msgpack.packb(None), "got nil"),
    "map": (msgpack.packb({"func": "m:f"}), "got dict"),
    "int path": (msgpack.packb([1, [], {}]), "function path as a string, got int"),
    "bytes path": (msgpack.packb([b"m:f", []]), "function path as a string, got bytes"),
    "nil path": (msgpack.packb([None]), "function path as a string, got nil"),
    "too many fields": (msgpack.packb(["m:f", [], {}, 0, {}, 1]), "at most 5 fields, this one has 6"),
    "args int": (msgpack.packb(["m:f", 5]), "args of m:f must be an array, got int"),
    "args str": (msgpack.packb(["m:f", "abc"]), "args of m:f must be an array, got str"),
    "args map": (msgpack.packb(["m:f", {"a": 1}]), "args of m:f must be an array, got dict"),
    "kwargs list": (msgpack.packb(["m:f", [], [1, "x"]]), "kwargs of m:f must be a map"),
    "kwargs int keys": (msgpack.packb(["m:f", [], {1: 2}]), "must be a map with string keys"),
    "kwargs str": (msgpack.packb(["m:f", [], "x"]), "got str"),
    "retry str": (msgpack.packb(["m:f", [], {}, "3"]), "retry of m:f must be an integer, got str"),
    "retry float": (msgpack.packb(["m:f", [], {}, 1.5]), "retry of m:f must be an integer, got float"),
    "retry bool": (msgpack.packb(["m:f", [], {}, True]), "retry of m:f must be an integer, got bool"),
    "retry nil": (msgpack.packb(["m:f", [], {}, None]), "retry of m:f must be an integer, got nil"),
    "meta list": (msgpack.packb(["m:f", [], {}, 0, [1]]), "meta of m:f must be a map, got list"),
    "meta int": (msgpack.packb(["m:f", [], {}, 0, 3]), "meta of m:f must be a map, got int"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_gives_a_one_line_reason(case: str) -> None:
    data, fragment = MALFORMED[case]
    with pytest.raises(TaskDecodeError) as info:
        serializer.loads(data)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message and len(message) < 300


def test_struct_kwargs_reason_names_the_go_struct_cause() -> None:
    with pytest.raises(TaskDecodeError, match="Go struct is encoded as an array; send a map"):
        serializer.loads(msgpack.packb(["m:f", [], [1, "test"]]))


def test_nil_args_and_kwargs_mean_empty() -> None:
    """go-delayed's NewPyTask(path, nil, nil): c0 for args and kwargs."""
    task = serializer.loads(msgpack.packb(["m:f", None, None]))
    assert isinstance(task, PyTask) and list(task.args) == [] and dict(task.kwargs) == {}


def test_a_go_payload_that_is_not_msgpack_is_kept_not_refused() -> None:
    """The Go worker decides how to read a payload; the Python side only needs path and bytes."""
    raw = msgpack.packb(["main.F", b"\xc1\xc1"])
    task = serializer.loads(raw)
    assert isinstance(task, GoTask) and task.payload == b"\xc1\xc1" and task.args is None
    assert serializer.dumps(task) == raw


def test_decode_error_does_not_chain_the_msgpack_exception() -> None:
    """The worker logs ``str(exc)``; the msgpack exception must not leak in as a chained traceback."""
    with pytest.raises(TaskDecodeError) as info:
        serializer.loads(b"\xc1")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_unencodable_arguments_fail_at_enqueue_with_the_function_name() -> None:
    with pytest.raises(TypeError, match="arguments of m:f cannot be encoded with msgpack"):
        serializer.dumps(PyTask("m:f", [object()]))


def test_dumps_refuses_what_is_not_a_task() -> None:
    with pytest.raises(TypeError, match="expected PyTask or GoTask"):
        serializer.dumps("m:f")  # type: ignore[arg-type]
