"""Tasks as pure data: what to call and with which arguments. No I/O, no encoding.

The constructors take their arguments in the same order and with the same meaning as the Python package
``delayed`` 1.2, so code written for it reads the same here:

- ``PyTask(func, args=None, kwargs=None, retry=0)``: a Python function, named ``"module.path:func"``.
- ``GoTask(func_path, args=None)``: a go-delayed handler named like ``"main.f2"``; ``args`` is ONE value
  (several Go parameters are passed as a list, Go structs as lists in field order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: Separator between the module and the attribute in a Python function path.
PATH_SEPARATOR = ":"
#: attempts are counted below this (2**31: a task retried once a second would take 68 years to reach it)
MAX_ATTEMPT = 2**31


def meta_problem(meta: Mapping[str, Any]) -> str | None:
    """What is wrong with a task's ``meta`` fields, or None. ``meta`` comes off the wire, so every field
    pydelayed reads is checked here, once, instead of failing later on the task's failure path."""
    attempt = meta.get("attempt", 0)
    # The bound keeps attempt + 1 encodable by every serializer (msgpack stops at 2**64 - 1).
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 0 <= attempt < MAX_ATTEMPT:
        return f"attempt must be an integer from 0 to {MAX_ATTEMPT - 1}, got {attempt!r:.40}"
    return None


def function_path(func: Callable[..., Any]) -> str:
    """Return ``"module:qualname"`` for a module-level function, the form a worker can resolve."""
    module = getattr(func, "__module__", None)
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if not module or not name:
        raise ValueError(f"cannot build a task path for {func!r}: it has no module or name")
    if "<locals>" in name or "<lambda>" in name:
        raise ValueError(f"{module}.{name} is not a module-level function; a worker could not import it")
    if module == "__main__":
        # A worker in another process cannot import the producer's __main__: use the name it can import
        # (`python -m pkg.mod` or `python tasks.py`); "__main__" stays only when there is none.
        from .main_module import main_module_name

        module = main_module_name() or module
    return module + PATH_SEPARATOR + name


class PyTask:
    """A call of a Python function, to be run by a worker.

    :param func: the function, or its path ``"module.path:func"``.
    :param args: positional arguments (list or tuple).
    :param kwargs: keyword arguments.
    :param retry: how many times to retry after a failure; negative retries forever (delayed 1.2 meaning).
    :param meta: pydelayed's own optional fields (for example ``{"attempt": 2}``). They travel as a fifth
        element that is written only when not empty, so tasks without them stay byte-identical to
        delayed 1.2. ``attempt``, when present, must be an integer >= 0 (ValueError otherwise).
    """

    __slots__ = ("args", "func_path", "kwargs", "meta", "retry")

    def __init__(
        self,
        func: Callable[..., Any] | str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        retry: int = 0,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(func, str):
            self.func_path = func
        elif callable(func):
            self.func_path = function_path(func)
        else:
            raise TypeError(f"func must be a callable or a 'module:func' string, not {type(func).__name__}")
        self.args: Sequence[Any] = () if args is None else args
        self.kwargs: Mapping[str, Any] = {} if kwargs is None else kwargs
        if isinstance(retry, bool) or not isinstance(retry, int):
            raise TypeError(f"retry must be an int, not {type(retry).__name__}")
        self.retry = retry
        self.meta: dict[str, Any] = dict(meta) if meta else {}
        problem = meta_problem(self.meta)
        if problem is not None:
            raise ValueError(f"meta of {self.func_path}: {problem}")

    @classmethod
    def from_checked(cls, func_path: str, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None, retry: int,
                     meta: dict[str, Any] | None) -> PyTask:
        """A task from fields a serializer has checked already (a path string, a list, a string-keyed map,
        an int, a map without :func:`meta_problem`), taken as they are: no copy, no second check. Decoding
        runs for every task a worker takes."""
        task = cls.__new__(cls)
        task.func_path, task.retry = func_path, retry
        task.args = () if args is None else args
        task.kwargs = {} if kwargs is None else kwargs
        task.meta = {} if meta is None else meta
        return task

    @property
    def attempt(self) -> int:
        """How many times this task has been retried so far (0 for a first run)."""
        return int(self.meta.get("attempt", 0))

    def with_meta(self, meta: dict[str, Any]) -> PyTask:
        """A copy of this task with ``meta`` as its meta fields, taken as they are: for pydelayed's own
        fields added to a task that was checked when it was made (``attempt`` is checked again, and
        only if ``meta`` changed it)."""
        if meta.get("attempt", 0) != self.meta.get("attempt", 0):
            return PyTask(self.func_path, self.args, self.kwargs, self.retry, meta)
        copy = PyTask.__new__(PyTask)
        copy.func_path, copy.args, copy.kwargs, copy.retry, copy.meta = (
            self.func_path, self.args, self.kwargs, self.retry, meta)
        return copy

    def next_attempt(self) -> PyTask:
        """The task to enqueue for a retry: ``retry`` counts down (unless negative), ``attempt`` up."""
        meta = dict(self.meta)
        meta["attempt"] = self.attempt + 1
        retry = self.retry - 1 if self.retry > 0 else self.retry
        return PyTask(self.func_path, self.args, self.kwargs, retry, meta)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PyTask):
            return NotImplemented
        return (
            self.func_path == other.func_path
            and list(self.args) == list(other.args)
            and dict(self.kwargs) == dict(other.kwargs)
            and self.retry == other.retry
            and self.meta == other.meta
        )

    def __repr__(self) -> str:
        extra = f", retry={self.retry}" if self.retry else ""
        extra += f", meta={self.meta!r}" if self.meta else ""
        return f"PyTask({self.func_path!r}, {list(self.args)!r}, {dict(self.kwargs)!r}{extra})"


class GoTask:
    """A call of a go-delayed handler, to be run by a Go worker.

    :param func_path: the Go function name as ``runtime.FuncForPC`` gives it (``"main.f2"``).
    :param args: ONE value handed to the handler; ``None`` means no arguments. Pass several parameters as
        a list and Go structs as lists in field order (go-delayed encodes structs as arrays).
    :param payload: the encoded argument as read from the wire, when the task was decoded rather than
        built; ``args`` is then its decoded value.
    """

    __slots__ = ("args", "func_path", "payload")

    def __init__(self, func_path: str, args: Any = None, *, payload: bytes | None = None) -> None:
        if not isinstance(func_path, str):
            raise TypeError(f"func_path must be a str, not {type(func_path).__name__}")
        self.func_path = func_path
        self.args = args
        self.payload = payload

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GoTask):
            return NotImplemented
        return self.func_path == other.func_path and self.args == other.args

    def __repr__(self) -> str:
        return f"GoTask({self.func_path!r}, {self.args!r})"


#: Anything a queue can carry.
Task = PyTask | GoTask
