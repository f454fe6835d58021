"""Test tools for pydelayed and for third-party brokers and plugins.

- :mod:`delayed_core.testing.crashpoints`: the ``delayed-crashpoints`` pytest plugin, a harness that kills
  a worker at every named protocol boundary and counts lost and duplicated tasks;
- :mod:`delayed_core.testing.crashpoint_plugin`: the worker-side plugin it loads with ``--plugin``;
- :mod:`delayed_core.testing.crash_tasks`: the task functions whose runs the harness records;
- :mod:`delayed_core.testing.contract`: the broker contract suite, pytest tests every broker must pass
  (a third-party broker imports them and provides a ``broker_factory`` fixture).
"""
