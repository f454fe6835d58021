"""Byte-for-byte compatibility with go-delayed and delayed 1.2 (WIRE-FORMAT.md sections 3 and 4).

Every fixture entry is checked in both directions:

- encoding: the equivalent pydelayed call (the tables below, written out by hand from each entry's
  ``description``) must produce the fixture's bytes exactly;
- decoding: the fixture's bytes must decode to that same task (or to the expected task / error for the
  Go-only forms that have no Python equivalent).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delayed_core.errors import TaskDecodeError
from delayed_core.task import GoTask, PyTask, Task
from delayed_plugins.msgpack_serializer import MsgpackSerializer

FIXTURES = Path(__file__).parent / "fixtures"
REC = "interop_funcs:record"


def load_fixture(name: str) -> dict[str, dict[str, Any]]:
    """Fixture entries by case name."""
    entries = json.loads((FIXTURES / f"{name}.json").read_text())
    return {entry["name"]: entry for entry in entries}


GO_FIXTURE = load_fixture("go_enqueued")
PY12_FIXTURE = load_fixture("py12_enqueued")

#: go-delayed entries -> the pydelayed call that must give the SAME bytes.
GO_EQUIVALENT: dict[str, Task] = {
    "go_int": GoTask("main.OneInt", 42),
    "go_int_neg_big": GoTask("main.OneInt64", -1099511627776),
    "go_float": GoTask("main.OneFloat", 1.5),
    "go_string": GoTask("main.OneString", "hello"),
    "go_bytes": GoTask("main.OneBytes", b"\x00\x01\xff"),
    "go_struct": GoTask("main.OneStruct", [1, "test"]),  # Arg{A: 1, B: "test"}: a struct is an array
    "go_two_args": GoTask("main.TwoArgs", [1, [2, "two"]]),  # two parameters: one list
    "go_two_args_slice": GoTask("main.TwoArgs", [1, [2, "two"]]),
    "go_variadic": GoTask("main.Variadic", [1, 2, 3]),
    "go_variadic_one": GoTask("main.Variadic", [7]),
    "go_mix": GoTask("main.Mix", [1, "two", 3.5, True, [4, 5]]),
    "go_map": GoTask("main.OneMap", {"k": 1}),
    "py_args_kwargs": PyTask(REC, [1, 2], {"c": 3}),
}

#: go-delayed entries with no byte-identical Python call -> what they must decode to.
GO_DECODE_ONLY: dict[str, Task] = {
    "go_noargs": GoTask("main.NoArg", None),  # payload bin(c0); pydelayed writes the same (see below)
    "go_nil": GoTask("main.NoArg", None),  # payload nil (c0, not bin)
    "py_nil_nil": PyTask(REC),  # Go always writes 3 elements; nil args/kwargs mean empty
    "py_args_only": PyTask(REC, [1, 2]),
    "py_kwargs_only": PyTask(REC, None, {"s": "v"}),
}

#: go-delayed entries that must be refused, with a fragment of the reason.
GO_UNDECODABLE = {"py_args_struct": "Go struct is encoded as an array"}

#: delayed 1.2 entries -> the pydelayed call that must give the SAME bytes.
PY12_EQUIVALENT: dict[str, Task] = {
    "py_noargs": PyTask(REC),
    "py_args": PyTask(REC, [1, 2]),
    "py_args_tuple": PyTask(REC, (1, 2)),
    "py_kwargs_only": PyTask(REC, None, {"c": 3}),
    "py_args_kwargs": PyTask(REC, [1, "x"], {"c": 3, "d": [True, None]}),
    "py_retry": PyTask(REC, [1], retry=3),
    "py_retry_noargs": PyTask(REC, retry=-1),
    "py_bytes_float": PyTask(REC, [b"\x00\xff", 1.5]),
    "go_noargs_emptylist": GoTask("main.NoArg", []),
    "go_int": GoTask("main.OneInt", 42),
    "go_int_neg_big": GoTask("main.OneInt64", -1099511627776),
    "go_float": GoTask("main.OneFloat", 1.5),
    "go_string": GoTask("main.OneString", "hello"),
    "go_bytes": GoTask("main.OneBytes", b"\x00\x01\xff"),
    "go_struct_list": GoTask("main.OneStruct", [1, "test"]),
    "go_struct_dict": GoTask("main.OneStruct", {"A": 1, "B": "test"}),
    "go_two_args": GoTask("main.TwoArgs", [1, [2, "two"]]),
    "go_variadic": GoTask("main.Variadic", [1, 2, 3]),
    "go_mix": GoTask("main.Mix", [1, "two", 3.5, True, [4, 5]]),
    "go_map": GoTask("main.OneMap", {"k": 1}),
    "go_float_for_int": GoTask("main.OneInt", 2.0),
    "go_unregistered": GoTask("main.Missing", [1]),
}

#: delayed 1.2 entries pydelayed deliberately does NOT reproduce -> what they decode to.
PY12_DECODE_ONLY: dict[str, Task] = {
    "go_noargs": GoTask("main.NoArg", None),  # the bare string go-delayed cannot read
}

#: go-delayed's NewGoTask("main.NoArg"): what pydelayed writes for GoTask("main.NoArg").
GO_NOARGS_HEX = "92aa6d61696e2e4e6f417267c401c0"

serializer = MsgpackSerializer()


def test_the_tables_cover_every_fixture_entry() -> None:
    """A new fixture entry must be classified here, not silently skipped."""
    assert set(GO_FIXTURE) == set(GO_EQUIVALENT) | set(GO_DECODE_ONLY) | set(GO_UNDECODABLE)
    assert set(PY12_FIXTURE) == set(PY12_EQUIVALENT) | set(PY12_DECODE_ONLY)


def _from_fixture_json(value: Any) -> Any:
    """The fixtures' ``decoded`` notation back to Python values (``{"$bin": hex}`` -> bytes)."""
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        return {key: _from_fixture_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_fixture_json(item) for item in value]
    return value


@pytest.mark.parametrize("entry", [*GO_FIXTURE.values(), *PY12_FIXTURE.values()],
                         ids=lambda e: f"{e['producer']}-{e['name']}")
def test_fixture_hex_matches_its_decoded_field(entry: dict[str, Any]) -> None:
    """Sanity check of the fixtures themselves, so the tables below compare against the right bytes."""
    assert msgpack.unpackb(bytes.fromhex(entry["hex"]), raw=False) == _from_fixture_json(entry["decoded"])
    assert entry["noti"] == "1"


# -- encoding ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(GO_EQUIVALENT))
def test_encode_like_go_delayed(name: str) -> None:
    assert serializer.dumps(GO_EQUIVALENT[name]).hex() == GO_FIXTURE[name]["hex"]


@pytest.mark.parametrize("name", sorted(PY12_EQUIVALENT))
def test_encode_like_delayed_12(name: str) -> None:
    assert serializer.dumps(PY12_EQUIVALENT[name]).hex() == PY12_FIXTURE[name]["hex"]


def test_no_arg_go_task_uses_go_delayeds_form() -> None:
    """GoTask(f) with no args is NewGoTask(f)'s ``[f, bin(c0)]``, never delayed 1.2's bare string."""
    encoded = serializer.dumps(GoTask("main.NoArg")).hex()
    assert encoded == GO_NOARGS_HEX == GO_FIXTURE["go_noargs"]["hex"]
    assert encoded != PY12_FIXTURE["go_noargs"]["hex"]


def test_same_bytes_as_the_installed_delayed_12() -> None:
    """Every PyTask / GoTask-with-args of the table also matches what the real library writes today."""
    delayed_task = pytest.importorskip("delayed.task")
    for name, task in PY12_EQUIVALENT.items():
        if isinstance(task, PyTask):
            theirs = delayed_task.PyTask(task.func_path, task.args, task.kwargs, task.retry).serialize()
        else:
            theirs = delayed_task.GoTask(task.func_path, task.args).serialize()
        assert serializer.dumps(task) == theirs, name


# -- decoding ------------------------------------------------------------------------------------
def _assert_decodes_to(hex_bytes: str, expected: Task) -> None:
    decoded = serializer.loads(bytes.fromhex(hex_bytes))
    assert type(decoded) is type(expected)
    assert decoded == expected
    if isinstance(expected, PyTask):
        assert isinstance(decoded, PyTask)
        assert list(decoded.args) == list(expected.args) and decoded.retry == expected.retry
        assert dict(decoded.kwargs) == dict(expected.kwargs) and decoded.meta == {}


@pytest.mark.parametrize("name", sorted(GO_EQUIVALENT | GO_DECODE_ONLY))
def test_decode_go_delayed_bytes(name: str) -> None:
    _assert_decodes_to(GO_FIXTURE[name]["hex"], (GO_EQUIVALENT | GO_DECODE_ONLY)[name])


@pytest.mark.parametrize("name", sorted(PY12_EQUIVALENT | PY12_DECODE_ONLY))
def test_decode_delayed_12_bytes(name: str) -> None:
    _assert_decodes_to(PY12_FIXTURE[name]["hex"], (PY12_EQUIVALENT | PY12_DECODE_ONLY)[name])


@pytest.mark.parametrize("name", sorted(GO_UNDECODABLE))
def test_go_struct_kwargs_is_refused_with_a_reason(name: str) -> None:
    with pytest.raises(TaskDecodeError) as info:
        serializer.loads(bytes.fromhex(GO_FIXTURE[name]["hex"]))
    message = str(info.value)
    assert GO_UNDECODABLE[name] in message and REC in message and "\n" not in message


def test_decoded_go_task_keeps_its_payload_bytes() -> None:
    """Re-encoding a decoded GoTask gives the original bytes, even when Go decides how to read them."""
    for name in sorted(set(GO_EQUIVALENT) - {"py_args_kwargs"} | {"go_noargs"}):
        raw = bytes.fromhex(GO_FIXTURE[name]["hex"])
        decoded = serializer.loads(raw)
        assert isinstance(decoded, GoTask)
        assert decoded.payload == msgpack.unpackb(raw)[1]
        assert serializer.dumps(decoded) == raw, name


def test_bare_string_is_a_go_task_without_args() -> None:
    decoded = serializer.loads(bytes.fromhex("aa6d61696e2e4e6f417267"))
    assert isinstance(decoded, GoTask) and decoded.func_path == "main.NoArg" and decoded.args is None


# -- properties ----------------------------------------------------------------------------------
# Values msgpack carries unchanged (NaN is left out: it is never equal to itself).
_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
            | st.floats(allow_nan=False) | st.text(max_size=20) | st.binary(max_size=20))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_py_paths = st.builds(lambda m, f: f"{m}:{f}", st.from_regex(r"[a-z_][a-z0-9_.]{0,15}", fullmatch=True),
                      st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True))
# Go function names never contain ":" (runtime.FuncForPC gives "pkg/path.(*T).Method").
_go_paths = st.text(min_size=1, max_size=40).filter(lambda s: ":" not in s)
_args = st.lists(_values, max_size=4)
_kwargs = st.dictionaries(st.text(max_size=8), _values, max_size=4)
_retry = st.integers(min_value=-3, max_value=5)
_meta = st.dictionaries(st.sampled_from(["attempt", "id", "x"]), st.integers(0, 100), max_size=2)


@settings(max_examples=300, deadline=None)
@given(path=_py_paths, args=_args, kwargs=_kwargs, retry=_retry, meta=_meta, as_tuple=st.booleans())
def test_py_task_round_trip_and_trailing_trim(path: str, args: list[Any], kwargs: dict[str, Any], retry: int,
                                              meta: dict[str, Any], as_tuple: bool) -> None:
    task = PyTask(path, tuple(args) if as_tuple else args, kwargs, retry, meta)
    raw = serializer.dumps(task)
    assert serializer.loads(raw) == task
    # delayed 1.2's trim: retry==0 drops retry, then empty kwargs drops kwargs, then empty args drops
    # args; meta is pydelayed's fifth element and appears only when it is not empty.
    if meta:
        size = 5
    elif retry:
        size = 4
    elif kwargs:
        size = 3
    elif args:
        size = 2
    else:
        size = 1
    wire = msgpack.unpackb(raw, raw=False)
    assert wire == [path, args, kwargs, retry, meta][:size]


@settings(max_examples=200, deadline=None)
@given(path=_py_paths, args=_args, kwargs=_kwargs, retry=_retry)
def test_py_task_bytes_equal_delayed_12(path: str, args: list[Any], kwargs: dict[str, Any], retry: int) -> None:
    """Without meta, every PyTask is byte-identical to the real delayed 1.2 serializer's output."""
    delayed_task = pytest.importorskip("delayed.task")
    theirs = delayed_task.PyTask(path, args, kwargs, retry).serialize()
    assert serializer.dumps(PyTask(path, args, kwargs, retry)) == theirs


@settings(max_examples=300, deadline=None)
@given(path=_go_paths, args=_values)
def test_go_task_round_trip(path: str, args: Any) -> None:
    raw = serializer.dumps(GoTask(path, args))
    decoded = serializer.loads(raw)
    assert isinstance(decoded, GoTask) and decoded == GoTask(path, args)
    # Always go-delayed's [path, bin(msgpack(args))], including args=None (bin(c0)).
    assert msgpack.unpackb(raw, raw=False) == [path, msgpack.packb(args)]
    assert decoded.payload == msgpack.packb(args)


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=64) | _values.map(msgpack.packb))
def test_any_bytes_decode_to_a_task_or_a_decode_error(data: bytes) -> None:
    """Garbage from Redis never raises anything but TaskDecodeError (the worker dead-letters it)."""
    try:
        task = serializer.loads(data)
    except TaskDecodeError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(task, PyTask | GoTask)
