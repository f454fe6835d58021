"""The CLI's start-up work: one plugin manager per command, one argument parser, no worker modules for
an admin command. (Its time is measured by bench/cli_start.py, never asserted.)"""

from __future__ import annotations

import subprocess
import sys

from delayed_core import Delayed, load_config
from delayed_core.cli.main import build_parser
from delayed_core.config_file import ConfigFile


def test_the_first_app_takes_the_plugin_manager_that_resolved_its_config() -> None:
    config = load_config({"broker_url": "memory://start"}, env={}, config_file=ConfigFile(), load_entry_points=False)
    assert config.plugins_handoff is not None
    first = Delayed(config=config, load_entry_points=False)
    second = Delayed(config=config, load_entry_points=False)
    assert first.plugin_manager is config.plugins_handoff.manager
    # a later app on the same config gets its own: apps never share plugin state
    assert second.plugin_manager is not first.plugin_manager


def test_an_app_with_other_plugins_builds_its_own_manager() -> None:
    config = load_config({"broker_url": "memory://start"}, env={}, config_file=ConfigFile(), load_entry_points=False)
    assert config.plugins_handoff is not None
    app = Delayed(config=config, load_entry_points=True)
    assert app.plugin_manager is not config.plugins_handoff.manager


def test_a_named_command_parses_as_with_every_command_built() -> None:
    argv = ["dead", "list", "--queue", "q", "--limit", "5", "--json"]
    assert vars(build_parser("dead").parse_args(argv)) == vars(build_parser().parse_args(argv))


def test_info_imports_no_worker_module() -> None:
    code = ("import sys\nfrom delayed_core.cli.main import main\n"
            "main(['info', '--broker', 'redis://127.0.0.1:1/0'])\n"
            "print(sorted(set(sys.modules) & {'delayed_core.worker', 'delayed_core.runner', 'delayed_core.sweeper',"
            " 'delayed_core.doctor', 'delayed_redis.doctor'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
