"""The pluggy markers of the ``delayed`` project. Import ``hookimpl`` from ``delayed_core``."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "delayed"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
