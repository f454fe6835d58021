"""The importable name of the ``__main__`` module, so that tasks defined in a script reach workers.

``python tasks.py`` runs ``tasks.py`` as ``__main__``; a function defined there has ``__module__ ==
"__main__"``, a name no worker can import. Its real name is recovered from:

1. ``__main__.__spec__.name`` when run as ``python -m pkg.tasks``;
2. else ``__main__.__file__``: the file name, prefixed by the packages that hold it (directories with an
   ``__init__.py``), the way ``import`` would find it from the folder above the top package.
   ``python tasks.py`` gives ``tasks``, which ``delayed worker --import tasks`` imports from that folder.

An interactive session, ``python -c`` or a notebook has neither: such functions have no importable name.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main_module_name() -> str | None:
    """The name workers can import the running ``__main__`` module by, or None when there is none."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return spec.name
    filename = getattr(main, "__file__", None)
    if not filename:
        return None
    return module_name_of(Path(filename))


def module_name_of(path: Path) -> str | None:
    """``pkg.sub.mod`` for ``.../pkg/sub/mod.py`` (``pkg`` and ``sub`` being packages); None when a part
    is not a valid module name (``my-tasks.py``) or the file is not Python source."""
    path = path.resolve()
    if path.suffix != ".py":
        return None
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        parts.append(folder.name)
        folder = folder.parent
    if not all(part.isidentifier() for part in parts):
        return None
    return ".".join(reversed(parts))
