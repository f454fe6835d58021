"""Configuration precedence, validation and per-queue overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from delayed_core.config import ConfigFile, find_config_file, load_config
from delayed_core.errors import ConfigError


def test_defaults_when_nothing_is_set() -> None:
    config = load_config(env={}, config_file=ConfigFile())
    assert config["slots"] == 1
    assert config.broker_url == "redis://localhost:6379/0"
    assert config.sources["slots"] == "default"


def test_precedence_argument_over_env_over_file(tmp_path: Path) -> None:
    (tmp_path / "delayed.toml").write_text('slots = 2\nqueue = "from-file"\ntimeout = 5\n')
    file = find_config_file(cwd=tmp_path, env={})
    config = load_config({"slots": 4}, env={"DELAYED_SLOTS": "3", "DELAYED_QUEUE": "from-env"}, config_file=file)
    assert (config["slots"], config.sources["slots"]) == (4, "argument")
    assert (config["queue"], config.sources["queue"]) == ("from-env", "env DELAYED_QUEUE")
    assert config["timeout"] == 5.0
    assert config.sources["timeout"].startswith("file ")


def test_pyproject_tool_table_is_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.delayed]\nimports = ["a", "b"]\n')
    config = load_config(env={}, config_file=find_config_file(cwd=tmp_path, env={}))
    assert config["imports"] == ["a", "b"]


def test_delayed_toml_wins_over_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.delayed]\nslots = 7\n")
    (tmp_path / "delayed.toml").write_text("slots = 3\n")
    assert load_config(env={}, config_file=find_config_file(cwd=tmp_path, env={}))["slots"] == 3


def test_unknown_file_key_suggests_the_right_name(tmp_path: Path) -> None:
    (tmp_path / "delayed.toml").write_text("slot = 2\n")
    # The file is read as written; its keys are checked once the plugins (which add settings) are known.
    file = find_config_file(cwd=tmp_path, env={})
    with pytest.raises(ConfigError, match=r"delayed.toml: unknown setting 'slot'.*did you mean 'slots'"):
        load_config(env={}, config_file=file)


def test_unknown_environment_variable_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"DELAYED_EXECUTER.*did you mean 'executor'"):
        load_config(env={"DELAYED_EXECUTER": "fork"}, config_file=ConfigFile())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DELAYED_SLOTS": "many"}, "slots must be an integer"),
        ({"DELAYED_SLOTS": "0"}, "slots must be > 0"),
        ({"DELAYED_TIMEOUT": "-1"}, "timeout must be >= 0"),
        ({"DELAYED_ALLOW_ANY_IMPORT": "perhaps"}, "must be true or false"),
        ({"DELAYED_LOG_LEVEL": "LOUD"}, "log_level must be one of"),
        ({"DELAYED_KEEP_ALIVE_TIMEOUT": "nan"}, "must be a number"),
    ],
)
def test_bad_values_fail_with_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(env=env, config_file=ConfigFile())
    assert "\n" not in str(info.value)


def test_keep_alive_interval_must_be_well_below_timeout() -> None:
    with pytest.raises(ConfigError, match="at most half"):
        load_config({"keep_alive_timeout": 10, "keep_alive_interval": 6}, env={}, config_file=ConfigFile())
    assert load_config({"keep_alive_timeout": 2, "keep_alive_interval": 0.5}, env={},
                       config_file=ConfigFile())["keep_alive_timeout"] == 2.0


def test_per_queue_overrides_apply_but_explicit_values_win(tmp_path: Path) -> None:
    (tmp_path / "delayed.toml").write_text("timeout = 10\n[queues.slow]\ntimeout = 600\nslots = 2\n")
    file = find_config_file(cwd=tmp_path, env={})
    config = load_config({"slots": 8}, env={}, config_file=file)
    slow = config.for_queue("slow")
    assert slow["timeout"] == 600.0 and "[queues.slow]" in slow.sources["timeout"]
    assert slow["slots"] == 8
    assert config.for_queue("other")["timeout"] == 10.0


def test_global_only_setting_is_refused_per_queue(tmp_path: Path) -> None:
    (tmp_path / "delayed.toml").write_text('[queues.q]\nbroker_url = "redis://x"\n')
    with pytest.raises(ConfigError, match="cannot be set per queue"):
        load_config(env={}, config_file=find_config_file(cwd=tmp_path, env={}))


def test_delayed_config_env_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "custom.toml"
    path.write_text("slots = 5\n")
    assert find_config_file(cwd=tmp_path / "elsewhere", env={"DELAYED_CONFIG": str(path)}).values == {"slots": 5}
    with pytest.raises(ConfigError, match="not a file"):
        find_config_file(env={"DELAYED_CONFIG": str(tmp_path / "missing.toml")})


def test_broken_toml_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "delayed.toml").write_text("slots = = 2\n")
    with pytest.raises(ConfigError, match="cannot read"):
        find_config_file(cwd=tmp_path, env={})
