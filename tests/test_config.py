"""Tests of assistant.config: defaults, layering (file < environment < overrides) and one-sentence errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from assistant.config import DEFAULT_MODEL_DIR, DEVICE_ROLES, Config, DeviceConfig, load
from assistant.errors import ConfigError, YinlingError

HOME_TOML = """
[home]
id = "home-042"
elder_name = "李大爷"

[mqtt]
host = "127.0.0.1"

[platform]
url = "http://127.0.0.1:8321"
token = "secret"

[[devices]]
name = "sos_button"
role = "sos"
room = "bedroom"

[[devices]]
name = "kitchen/gas"
role = "gas"
"""


def write(tmp_path: Path, text: str, name: str = "home.toml") -> Path:
    """Write a home file into the test's temporary directory."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_load_without_a_home_file() -> None:
    cfg = load(env={})
    assert isinstance(cfg, Config)
    assert (cfg.home.id, cfg.home.elder_name) == ("home-001", "张阿姨")
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("", 1883)
    assert (cfg.platform.url, cfg.platform.token) == ("", "")
    assert (cfg.web.port, cfg.web.enabled) == (8322, False)
    assert cfg.speech.wake_word == "小铃小铃"
    assert cfg.speech.tts_voice == "sit/cmn-latn-pinyin"
    assert cfg.speech.tts_rate == 120
    assert cfg.speech.tts_volume == 1.0
    assert (cfg.speech.input_device, cfg.speech.output_device) == ("", "")
    assert cfg.intents.accent_tolerant is False
    assert cfg.intents.min_confidence == 0.5
    assert cfg.logging.level == "INFO"
    assert cfg.devices == ()


def test_empty_model_dir_means_the_default_model_path() -> None:
    assert load(env={}).speech.model_path == DEFAULT_MODEL_DIR.expanduser()
    custom = load(env={}, overrides={"speech.model_dir": "~/models/small"})
    assert custom.speech.model_path == Path("~/models/small").expanduser()


def test_config_is_frozen() -> None:
    cfg = load(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.mqtt.port = 1  # type: ignore[misc]


def test_home_file_overrides_only_the_keys_it_names(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, HOME_TOML), env={})
    assert (cfg.home.id, cfg.home.elder_name) == ("home-042", "李大爷")
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("127.0.0.1", 1883)
    assert cfg.platform.token == "secret"
    assert cfg.speech.wake_word == "小铃小铃"
    assert cfg.devices == (
        DeviceConfig(name="sos_button", role="sos", room="bedroom"),
        DeviceConfig(name="kitchen/gas", role="gas", room=""),
    )


def test_home_file_path_may_be_a_string_and_may_start_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes("\ufeff[home]\nelder_name = \"王奶奶\"\n".encode())
    assert load(str(path), env={}).home.elder_name == "王奶奶"


def test_env_overrides_file_and_converts_types(tmp_path: Path) -> None:
    env = {
        "YINLING_MQTT_PORT": "1884",
        "YINLING_WEB_ENABLED": "true",
        "YINLING_SPEECH_TTS_VOLUME": "0.5",
        "YINLING_SPEECH_TTS_RATE": " 100 ",
        "YINLING_INTENTS_ACCENT_TOLERANT": "1",
        "YINLING_HOME_ELDER_NAME": "赵奶奶",
        "YINLING_LOGGING_LEVEL": "debug",
        "YINLING_SOMETHING_ELSE": "other tools may use the prefix",
        "PATH": "/usr/bin",
    }
    cfg = load(write(tmp_path, HOME_TOML), env=env)
    assert cfg.mqtt.port == 1884 and isinstance(cfg.mqtt.port, int)
    assert cfg.web.enabled is True
    assert cfg.speech.tts_volume == 0.5
    assert cfg.speech.tts_rate == 100
    assert cfg.intents.accent_tolerant is True
    assert cfg.home.elder_name == "赵奶奶"
    assert cfg.home.id == "home-042"  # from the file, not touched by the environment
    assert cfg.logging.level == "DEBUG"


def test_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YINLING_WEB_PORT", "9000")
    assert load().web.port == 9000
    assert load(env={}).web.port == 8322


def test_overrides_beat_env_in_nested_and_dotted_form() -> None:
    env = {"YINLING_MQTT_PORT": "1884", "YINLING_INTENTS_ACCENT_TOLERANT": "false"}
    cfg = load(env=env, overrides={"mqtt": {"port": 1885}, "intents.accent_tolerant": True})
    assert cfg.mqtt.port == 1885
    assert cfg.intents.accent_tolerant is True


def test_an_integer_is_accepted_for_a_float_key(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, "[speech]\ntts_volume = 1\n"), env={})
    assert cfg.speech.tts_volume == 1.0 and isinstance(cfg.speech.tts_volume, float)


def test_every_contract_device_role_is_accepted(tmp_path: Path) -> None:
    text = "".join(f'[[devices]]\nname = "d_{role}"\nrole = "{role}"\n' for role in DEVICE_ROLES)
    cfg = load(write(tmp_path, text), env={})
    assert [device.role for device in cfg.devices] == list(DEVICE_ROLES)


BAD_FILES = [
    ("unknown_section", "[mqt]\nport = 1\n", "mqt"),
    ("unknown_key", "[mqtt]\nprot = 1884\n", "mqtt.prot"),
    ("wrong_type", '[mqtt]\nport = "1884"\n', "mqtt.port"),
    ("bool_is_not_int", "[web]\nport = true\n", "web.port"),
    ("string_for_bool", '[web]\nenabled = "yes"\n', "web.enabled"),
    ("port_too_big", "[mqtt]\nport = 70000\n", "mqtt.port"),
    ("port_zero", "[web]\nport = 0\n", "web.port"),
    ("volume_out_of_range", "[speech]\ntts_volume = 1.5\n", "speech.tts_volume"),
    ("rate_out_of_range", "[speech]\ntts_rate = 5\n", "speech.tts_rate"),
    ("confidence_out_of_range", "[intents]\nmin_confidence = -0.1\n", "intents.min_confidence"),
    ("bad_log_level", '[logging]\nlevel = "LOUD"\n', "logging.level"),
    ("home_id_with_slash", '[home]\nid = "a/b"\n', "home.id"),
    ("empty_elder_name", '[home]\nelder_name = " "\n', "home.elder_name"),
    ("platform_url_scheme", '[platform]\nurl = "ftp://x"\n', "platform.url"),
    ("section_not_a_table", "mqtt = 5\n", "mqtt"),
    ("bad_device_role", '[[devices]]\nname = "lamp"\nrole = "lamp"\n', "devices[1].role"),
    ("device_without_role", '[[devices]]\nname = "lamp"\n', "role"),
    ("device_unknown_key", '[[devices]]\nname = "x"\nrole = "sos"\nfloor = 2\n', "devices[1].floor"),
    ("duplicate_device",
     '[[devices]]\nname = "x"\nrole = "sos"\n[[devices]]\nname = "x"\nrole = "door"\n', "devices[2].name"),
    ("devices_not_tables", 'devices = ["x"]\n', "devices"),
    ("syntax_error", "[mqtt]\nport = \n", "line 2"),
]


def assert_one_sentence(error: ConfigError, *needles: str) -> None:
    """The message is a single line ending with a full stop and names every needle."""
    message = str(error)
    assert "\n" not in message
    assert message.endswith(".")
    for needle in needles:
        assert needle in message, f"{needle!r} missing from {message!r}"


@pytest.mark.parametrize(("text", "key"), 
                         [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_bad_home_file_gives_one_sentence_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path, env={})
    assert_one_sentence(caught.value, key, str(path))


def test_out_of_range_message_names_value_and_allowed_range(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, "[mqtt]\nport = 70000\n"), env={})
    assert_one_sentence(caught.value, "mqtt.port", "70000", "1..65535")


def test_unknown_key_message_lists_allowed_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, "[mqtt]\nprot = 1884\n"), env={})
    assert_one_sentence(caught.value, "mqtt.prot", "host", "port")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "absent.toml", env={})
    assert_one_sentence(caught.value, "absent.toml", "does not exist")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, env={})
    assert_one_sentence(caught.value, str(tmp_path))


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes("[home]\nelder_name = \"张阿姨\"\n".encode("gbk"))
    with pytest.raises(ConfigError) as caught:
        load(path, env={})
    assert_one_sentence(caught.value, "gbk.toml", "UTF-8")


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("YINLING_MQTT_PORT", "abc", "integer"),
        ("YINLING_MQTT_PORT", "99999", "1..65535"),
        ("YINLING_WEB_ENABLED", "maybe", "true or false"),
        ("YINLING_SPEECH_TTS_VOLUME", "loud", "number"),
        ("YINLING_MQTT_PROT", "1884", "mqtt.prot"),
        ("YINLING_DEVICES_NAME", "x", "[[devices]]"),
    ],
)
def test_bad_env_value_names_the_variable(name: str, value: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(env={name: value})
    assert_one_sentence(caught.value, name, needle)


def test_bad_override_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load(env={}, overrides={"web.port": 123456})
    assert_one_sentence(caught.value, "web.port", "command-line")


def test_config_error_is_a_yinling_error() -> None:
    assert issubclass(ConfigError, YinlingError)


def test_decoys_default_to_empty_and_take_a_list_from_file_or_environment(tmp_path: Path) -> None:
    assert load(env={}).speech.decoys == ()  # empty: the bundled Mandarin list of voices/spotting.yaml is used
    cfg = load(write(tmp_path, '[speech]\ndecoys = ["가", "나"]\n'), env={})
    assert cfg.speech.decoys == ("가", "나")
    assert load(env={"YINLING_SPEECH_DECOYS": "가, 나,다"}).speech.decoys == ("가", "나", "다")
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, '[speech]\ndecoys = "가나다"\n', "bad.toml"), env={})
    assert_one_sentence(caught.value, "speech.decoys", "a list of non-empty strings")


def test_escalation_section_is_part_of_the_configuration(tmp_path) -> None:
    from assistant import config as config_module
    from assistant.errors import ConfigError

    path = tmp_path / "home.toml"
    path.write_text('[escalation]\nmorning_deadline = "09:00"\ninactivity_hours = 6\n', encoding="utf-8")
    cfg = config_module.load(path, env={})
    assert (cfg.escalation.morning_deadline, cfg.escalation.inactivity_hours) == ("09:00", 6.0)
    path.write_text('[escalation]\nmorning_deadline = "25:00"\n', encoding="utf-8")
    import pytest

    with pytest.raises(ConfigError, match="escalation.morning_deadline"):
        config_module.load(path, env={})
