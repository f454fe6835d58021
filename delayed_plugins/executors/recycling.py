"""The subprocess executor's child recycling settings, apart from the executor: the plugin declares them
in every process that resolves a configuration, and only a worker using that executor imports it."""

from __future__ import annotations

from delayed_core.settings import Setting, not_negative

MAX_TASKS_PER_CHILD: Setting[int] = Setting(
    "max_tasks_per_child", int, 0, "subprocess executor: restart a child after N tasks; 0 = never", not_negative,
    per_queue=True, executor="subprocess")
MAX_MEMORY_PER_CHILD: Setting[int] = Setting(
    "max_memory_per_child", int, 0, "subprocess executor: restart a child above N MiB; 0 = never", not_negative,
    per_queue=True, executor="subprocess")
