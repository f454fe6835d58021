"""The msgpack serializer: byte-compatible with go-delayed and delayed 1.2 (WIRE-FORMAT.md section 4).

Wire forms it writes:

- ``PyTask``: ``[path, args, kwargs, retry, meta]`` with empty trailing parts cut, exactly as delayed 1.2
  cuts them (meta is pydelayed's optional fifth element, absent unless used).
- ``GoTask``: ``[path, bin(msgpack(args))]``; with no args, ``[path, bin(c0)]`` as go-delayed's
  ``NewGoTask(f)`` writes it. Never delayed 1.2's bare-string form, which Go workers cannot read.

It reads everything the fixtures hold, including the bare-string GoTask and Go's ``[path, nil]``.
"""

from __future__ import annotations

from typing import Any

import msgpack

from delayed_core import hookimpl
from delayed_core.errors import TaskDecodeError
from delayed_core.interfaces import Serializer
from delayed_core.registry import ComponentRegistry
from delayed_core.task import PATH_SEPARATOR, GoTask, PyTask, Task, meta_problem

_NIL = msgpack.packb(None)


def _shown(path: str) -> str:
    """A function path fit for a one-line reason: escaped when it holds control characters."""
    return path if path.isprintable() else repr(path)


def _describe(value: Any) -> str:
    return type(value).__name__ if value is not None else "nil"


class MsgpackSerializer(Serializer):
    """Encodes tasks as go-delayed and delayed 1.x do. Never executes what it reads."""

    name = "msgpack"

    def dumps(self, task: Task) -> bytes:
        """Encode a PyTask or GoTask in its wire form."""
        if isinstance(task, PyTask):
            return self._dump_py(task)
        if isinstance(task, GoTask):
            payload = task.payload if task.payload is not None else (
                _NIL if task.args is None else msgpack.packb(task.args))
            return msgpack.packb((task.func_path, payload))
        raise TypeError(f"cannot serialize {type(task).__name__}; expected PyTask or GoTask")

    @staticmethod
    def _dump_py(task: PyTask) -> bytes:
        args = task.args if isinstance(task.args, list | tuple) else list(task.args)
        parts: tuple[Any, ...] = (task.func_path, args, task.kwargs, task.retry, task.meta)
        # Cut empty trailing parts, innermost last, so old readers see the shortest form.
        size = 5
        if not task.meta:
            size = 4
            if task.retry == 0:
                size = 3
                if not task.kwargs:
                    size = 2 if args else 1
        if size < 5:
            parts = parts[:size]
        try:
            return msgpack.packb(parts)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"arguments of {task.func_path} cannot be encoded with msgpack: {exc}") from None

    def dumps_value(self, value: Any) -> bytes:
        """A return value as msgpack, as arguments travel."""
        try:
            return msgpack.packb(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"the return value cannot be encoded with msgpack: {exc}") from None

    def loads_value(self, data: bytes) -> Any:
        """A return value :meth:`dumps_value` wrote."""
        return msgpack.unpackb(data, raw=False, strict_map_key=False)

    def loads(self, data: bytes) -> Task:
        """Decode a task; raise TaskDecodeError with a one-line reason for anything else."""
        try:
            obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception as exc:  # msgpack raises many types for bad input; all mean "not a task"
            detail = " ".join(str(exc).split())[:200]  # dead-letter reasons stay one short line
            raise TaskDecodeError(f"not valid msgpack ({type(exc).__name__}: {detail!r})") from None
        if isinstance(obj, str):
            # delayed 1.2 writes GoTask(f) with no args as a bare string.
            return GoTask(obj, None)
        if not isinstance(obj, list) or not obj:
            raise TaskDecodeError(f"expected a non-empty msgpack array, got {_describe(obj)}")
        path = obj[0]
        if not isinstance(path, str):
            raise TaskDecodeError(f"expected the function path as a string, got {_describe(path)}")
        if PATH_SEPARATOR not in path and len(obj) == 2 and isinstance(obj[1], bytes | None):
            return self._load_go(path, obj[1])
        return self._load_py(path, obj)

    @staticmethod
    def _load_go(path: str, payload: bytes | None) -> GoTask:
        if payload is None:
            return GoTask(path, None)
        try:
            args = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception:
            args = None  # still a Go task; the payload is kept as it was
        return GoTask(path, args, payload=payload)

    @staticmethod
    def _load_py(path: str, obj: list[Any]) -> PyTask:
        if len(obj) > 5:
            raise TaskDecodeError(f"a Python task has at most 5 fields, this one has {len(obj)}")
        args = obj[1] if len(obj) > 1 else None
        kwargs = obj[2] if len(obj) > 2 else None
        retry = obj[3] if len(obj) > 3 else 0
        meta = obj[4] if len(obj) > 4 else None
        if args is not None and not isinstance(args, list):
            raise TaskDecodeError(f"args of {_shown(path)} must be an array, got {_describe(args)}")
        # (an empty map, the placeholder before retry and meta, needs no look at its keys)
        if kwargs is not None and not (isinstance(kwargs, dict) and (not kwargs or all(isinstance(k, str)
                                                                                        for k in kwargs))):
            hint = " (a Go struct is encoded as an array; send a map)" if isinstance(kwargs, list) else ""
            raise TaskDecodeError(f"kwargs of {_shown(path)} must be a map with string keys, got "
                                  f"{_describe(kwargs)}{hint}")
        if isinstance(retry, bool) or not isinstance(retry, int):
            raise TaskDecodeError(f"retry of {_shown(path)} must be an integer, got {_describe(retry)}")
        if meta is not None and not isinstance(meta, dict):
            raise TaskDecodeError(f"meta of {_shown(path)} must be a map, got {_describe(meta)}")
        problem = meta_problem(meta) if meta else None
        if problem is not None:
            raise TaskDecodeError(f"meta of {_shown(path)}: {problem}")
        return PyTask.from_checked(path, args, kwargs, retry, meta)


@hookimpl
def delayed_register_components(registry: ComponentRegistry) -> None:
    """Register the msgpack serializer."""
    registry.add_serializer("msgpack", MsgpackSerializer)
