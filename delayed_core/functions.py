"""The set of functions a worker may run, and how a task's function path is resolved.

A task names its function by a string that came out of the broker, i.e. untrusted input. A worker therefore
runs only functions it was told about:

- functions registered with ``@app.task`` (or :meth:`FunctionRegistry.register`);
- public functions *defined in* a module named by ``imports`` / ``--import`` (a name the module merely
  imported, such as ``from os import system``, does not count).

``allow_any_import`` lifts the check for parity with delayed 1.x, which imported whatever a task named.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, TaskNotAllowed
from .task import PATH_SEPARATOR, function_path

if TYPE_CHECKING:  # annotations only: an app that schedules nothing never imports them
    from .periodic import PeriodicSpec
    from .rate_limit import RateLimit

logger = logging.getLogger("delayed.functions")


@dataclass(frozen=True)
class TaskOptions:
    """Per-function options given to ``@app.task``.

    :param timeout: seconds the function may run (None: the worker's default).
    :param rate_limit: starts allowed per period, shared by every worker (None: no limit).
    :param periodic: the schedule of a function registered with ``@app.periodic``.
    """

    timeout: float | None = None
    rate_limit: RateLimit | None = None
    periodic: PeriodicSpec | None = None


NO_OPTIONS = TaskOptions()


@dataclass(frozen=True)
class TaskPlan:
    """What a worker needs to know per task about an allowed function, worked out once per path.

    :param timeout: the function's own time limit (None: the queue's).
    :param rate_limit: its rate limit (None: no limit, and no broker call for it).
    """

    timeout: float | None
    rate_limit: RateLimit | None


class FunctionRegistry:
    """Maps function paths to the callables a worker is allowed to run."""

    def __init__(self, allow_any_import: bool = False) -> None:
        self.allow_any_import = allow_any_import
        self._functions: dict[str, Callable[..., Any]] = {}
        self._options: dict[str, TaskOptions] = {}
        self._modules: set[str] = set()
        #: allowed path -> its :class:`TaskPlan`, filled by :meth:`plan`. The worker reads it once per task
        #: (one dict lookup where it used to check the path and read its options twice); a path that is not
        #: allowed never enters it, so it checks again each time, as before.
        self.plans: dict[str, TaskPlan] = {}

    @property
    def modules(self) -> list[str]:
        """Modules whose functions are allowed, sorted."""
        return sorted(self._modules)

    @property
    def registered(self) -> list[str]:
        """Paths of the functions registered one by one (not those allowed through a module), sorted."""
        return sorted(self._options)

    def register(self, func: Callable[..., Any], path: str | None = None,
                 options: TaskOptions | None = None) -> str:
        """Allow ``func`` under ``path`` (default ``"module:qualname"``); return the path."""
        path = path or function_path(func)
        self._functions[path] = func
        self._options[path] = options or TaskOptions()
        self.plans.clear()  # a plan may hold the options this replaces
        return path

    def locations(self) -> dict[str, str]:
        """Registered path -> ``"module:qualname"`` where another process can import the function (it
        differs from the path for functions registered under a custom ``name``). Functions that cannot be
        imported by name (defined inside a function) are left out."""
        result = {}
        for path in self._options:
            try:
                result[path] = function_path(self._functions[path])
            except ValueError:
                continue
        return result

    def allow_module(self, module_name: str) -> None:
        """Import ``module_name`` and allow the public functions it defines."""
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"cannot import {module_name!r} (named by imports/--import): {exc}") from None
        self._modules.add(module_name)
        self._adopt_task_functions(module)

    def _adopt_task_functions(self, module: ModuleType) -> None:
        """Register the ``@app.task`` functions a module defines, with their options and custom names.

        The module decorated them on its own app, which is not the worker's app (``delayed worker
        --import tasks`` builds its own), so without this their ``timeout=`` and ``name=`` would be lost.
        """
        from .task_function import TaskFunction  # here: task_function imports this module's neighbours

        for value in vars(module).values():
            # Only those it defines, as for plain functions: an imported one is its own module's business.
            if (isinstance(value, TaskFunction) and value.app.functions is not self
                    and getattr(value.func, "__module__", None) == module.__name__):
                self.register(value.func, value.path, value.app.functions.options(value.path))

    def periodic(self) -> dict[str, PeriodicSpec]:
        """Path -> schedule of every function registered with ``@app.periodic`` (or adopted from an
        imported module), sorted by path."""
        return {path: options.periodic for path, options in sorted(self._options.items())
                if options.periodic is not None}

    def options(self, path: str) -> TaskOptions:
        """Options registered for ``path`` (defaults when none were given)."""
        return self._options.get(path) or NO_OPTIONS

    def plan(self, path: str) -> TaskPlan:
        """The plan of ``path`` (see :attr:`plans`); TaskNotAllowed, as :meth:`check_allowed`, when the
        path may not run."""
        plan = self.plans.get(path)
        if plan is None:
            self.check_allowed(path)
            options = self.options(path)
            plan = self.plans[path] = TaskPlan(options.timeout, options.rate_limit)
        return plan

    def check_allowed(self, path: str) -> None:
        """Raise TaskNotAllowed unless ``path`` may run; cheap, and never imports anything.

        The worker asks before handing a task to its executor, which resolves the function where it runs
        (:meth:`resolve`). A registered path is one dict lookup; a function of an allowed module (imported
        at start) one attribute lookup, then cached. With ``allow_any_import`` every other
        ``module:function`` path passes: whether it imports is only known where the task runs.
        """
        if path in self._functions:
            return
        module_name, _ = _split(path)
        if module_name in self._modules or not self.allow_any_import:
            self.resolve(path)

    def resolve(self, path: str) -> Callable[..., Any]:
        """Return the allowed callable named by ``path``, or raise TaskNotAllowed with the reason."""
        func = self._functions.get(path)
        if func is not None:
            return func
        module_name, attribute = _split(path)
        if module_name in self._modules:
            func = self._from_allowed_module(module_name, attribute)
        elif self.allow_any_import:
            func = self._import_any(module_name, attribute)
        if func is None:
            raise TaskNotAllowed(
                f"{path} is not an allowed function: register it with @app.task or name its module "
                "with --import"
            )
        # Cache so the hot path is one dict lookup next time.
        self._functions[path] = func
        return func

    def register_location(self, path: str, location: str) -> None:
        """Register under ``path`` the function importable at ``location`` (``"module:qualname"``, as
        :meth:`locations` gives): how a child interpreter rebuilds the worker's registered functions.
        Raises ConfigError when it cannot be imported there."""
        module_name, separator, qualname = location.partition(PATH_SEPARATOR)
        if not separator:
            raise ConfigError(f"{path} has no importable location")
        try:
            obj = _imported(module_name, qualname)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import the registered function {path} from {location}: {exc}") from None
        self.register(obj, path)

    @staticmethod
    def _from_allowed_module(module_name: str, attribute: str) -> Callable[..., Any] | None:
        if attribute.startswith("_"):
            return None
        obj = getattr(sys.modules[module_name], attribute, None)
        if not callable(obj) or getattr(obj, "__module__", None) != module_name:
            return None
        return obj

    @staticmethod
    def _import_any(module_name: str, attribute: str) -> Callable[..., Any] | None:
        try:
            obj = _imported(module_name, attribute)
        except (ImportError, AttributeError) as exc:
            raise TaskNotAllowed(f"{module_name}:{attribute} cannot be imported: {exc}") from None
        return obj if callable(obj) else None



def _imported(module_name: str, qualname: str) -> Any:
    """What the dotted ``qualname`` names in module ``module_name``, importing the module; raises
    ImportError or AttributeError."""
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _split(path: str) -> tuple[str, str]:
    """``"module:function"`` -> its two parts; TaskNotAllowed for anything else."""
    module_name, separator, attribute = path.partition(PATH_SEPARATOR)
    if not separator or not module_name or not attribute:
        raise TaskNotAllowed(f"{path!r} is not a 'module:function' path")
    return module_name, attribute
