"""What the crash-point harness and its worker-side plugin agree on: variable names, modes, log marker.

Kept apart from :mod:`.crashpoint_plugin`, which arms itself when imported: the harness must be able to
read these without arming the process it runs in.
"""

from __future__ import annotations

#: the point to break at (one of ``delayed_core.crashpoints.POINTS``)
POINT_VARIABLE = "DELAYED_CRASHPOINT"
#: ``sigkill`` or ``disconnect``
MODE_VARIABLE = "DELAYED_CRASHPOINT_MODE"
#: act at the Nth reach of the point
AFTER_VARIABLE = "DELAYED_CRASHPOINT_AFTER"
#: the worker's pid, inherited by the executors' children
PID_VARIABLE = "DELAYED_CRASHPOINT_PID"

MODES = ("sigkill", "disconnect")
#: logged by the plugin just before it acts; the harness waits for it in the worker's log
FIRED = "crash point {point} fired"
#: the module a worker loads with ``--plugin``
PLUGIN_MODULE = "delayed_core.testing.crashpoint_plugin"
