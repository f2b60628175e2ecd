"""Typed settings: defaults, TOML file, EWS_* environment, validation and secrets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from config.rules import load_rules
from config.settings import Settings, SettingsError, Topics, load_settings
from streams.app import create_app


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ews.toml"
    path.write_text(text)
    return path


def test_defaults_load() -> None:
    """With no file and no environment, the documented defaults load and validate."""
    s = load_settings({})
    assert s == Settings()
    assert s.partitions == 4
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.kafka_idempotent_producer is True
    assert s.topics == Topics()
    assert s.topics.transactions == "ews.transactions"
    assert s.topics.inputs == ("ews.transactions", "ews.repayments", "ews.outcomes", "ews.feedback")


def test_every_field_documents_its_variable() -> None:
    """Each settings field names its EWS_* variable, derived from the field name."""
    for f in dataclasses.fields(Settings):
        if f.name != "topics":
            assert f.metadata["doc"] == f"EWS_{f.name.upper()}"
    for f in dataclasses.fields(Topics):
        assert f.metadata["doc"] == f"EWS_TOPIC_{f.name.upper()}"


def test_env_overrides_defaults() -> None:
    """EWS_* variables override defaults, parsed to the field's type."""
    s = load_settings(
        {
            "EWS_PARTITIONS": "12",
            "EWS_KAFKA_BOOTSTRAP": "k1:9092,k2:9093",
            "EWS_SINK_RETRY_MAX_S": "2.5",
            "EWS_LOG_LEVEL": "debug",
            "UNRELATED": "ignored",
        }
    )
    assert s.partitions == 12
    assert s.kafka_bootstrap == "k1:9092,k2:9093"
    assert s.sink_retry_max_s == 2.5
    assert s.log_level == "debug"


def test_topic_prefix_prefixes_every_topic() -> None:
    """EWS_TOPIC_PREFIX gives every topic name that prefix."""
    s = load_settings({"EWS_TOPIC_PREFIX": "t42."})
    assert s.topics == Topics(
        transactions="t42.transactions",
        repayments="t42.repayments",
        outcomes="t42.outcomes",
        feedback="t42.feedback",
        notifications="t42.notifications",
        deadletter="t42.deadletter",
        training="t42.training",
    )


def test_one_topic_env_overrides_the_prefix() -> None:
    """EWS_TOPIC_TRANSACTIONS overrides that one name; the others keep the prefix."""
    s = load_settings({"EWS_TOPIC_PREFIX": "t42.", "EWS_TOPIC_TRANSACTIONS": "bank.tx"})
    assert s.topics.transactions == "bank.tx"
    assert s.topics.repayments == "t42.repayments"
    assert s.topics.deadletter == "t42.deadletter"


def test_file_with_topics_table(tmp_path: Path) -> None:
    """A TOML file passed as file= sets fields and topic names through a [topics] table."""
    path = _file(
        tmp_path,
        'partitions = 8\nkafka_bootstrap = "broker:29092"\n'
        'kafka_idempotent_producer = false\n[topics]\nrepayments = "loans.repayments"\n',
    )
    s = load_settings({}, file=path)
    assert s.partitions == 8
    assert s.kafka_bootstrap == "broker:29092"
    assert s.kafka_idempotent_producer is False
    assert s.topics.repayments == "loans.repayments"
    assert s.topics.transactions == "ews.transactions"


def test_ews_config_names_the_file_and_env_beats_file(tmp_path: Path) -> None:
    """EWS_CONFIG points at the file; an EWS_* variable beats the file's value."""
    path = _file(tmp_path, 'partitions = 8\n[topics]\ntransactions = "file.tx"\n')
    s = load_settings({"EWS_CONFIG": str(path), "EWS_PARTITIONS": "16"})
    assert s.partitions == 16
    assert s.topics.transactions == "file.tx"
    s2 = load_settings({"EWS_CONFIG": str(path), "EWS_TOPIC_TRANSACTIONS": "env.tx"})
    assert s2.topics.transactions == "env.tx"


def test_overrides_win_over_env() -> None:
    """Keyword overrides beat the environment."""
    assert load_settings({"EWS_PARTITIONS": "3"}, partitions=5).partitions == 5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", False),
        ("false", False),
        ("False", False),
        ("no", False),
        ("off", False),
        ("1", True),
        ("true", True),
        ("YES", True),
        (" on ", True),
    ],
)
def test_booleans_are_parsed_explicitly(raw: str, expected: bool) -> None:
    """Boolean variables are parsed by value: "0" and "false" are False, not truthy strings."""
    s = load_settings({"EWS_KAFKA_IDEMPOTENT_PRODUCER": raw})
    assert s.kafka_idempotent_producer is expected


@pytest.mark.parametrize("raw", ["maybe", "", "2"])
def test_unparsable_boolean_names_the_field(raw: str) -> None:
    """A boolean that is neither true nor false fails naming the field and variable."""
    with pytest.raises(SettingsError, match=r"kafka_idempotent_producer.*EWS_KAFKA_IDEMPOTENT"):
        load_settings({"EWS_KAFKA_IDEMPOTENT_PRODUCER": raw})


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"EWS_PARTITIONS": "x"}, "partitions"),
        ({"EWS_PARTITIONS": "0"}, "partitions"),
        ({"EWS_PARTITIONS": "-3"}, "partitions"),
        ({"EWS_REPLICATION_FACTOR": "0"}, "replication_factor"),
        ({"EWS_KAFKA_BOOTSTRAP": "nope"}, "kafka_bootstrap"),
        ({"EWS_KAFKA_BOOTSTRAP": "host:port"}, "kafka_bootstrap"),
        ({"EWS_REDIS_URL": "http://x"}, "redis_url"),
        ({"EWS_KAFKA_SECURITY_PROTOCOL": "TLS"}, "kafka_security_protocol"),
        ({"EWS_KAFKA_SASL_MECHANISM": "KERBEROS"}, "kafka_sasl_mechanism"),
        ({"EWS_SINK_RETRY_MAX_S": "0"}, "sink_retry_max_s"),
        ({"EWS_SINK_RETRY_MAX_S": "soon"}, "sink_retry_max_s"),
        ({"EWS_WEB_PORT": "70000"}, "web_port"),
        ({"EWS_STORE": "redis://x"}, "store"),
        ({"EWS_LOG_FORMAT": "xml"}, "log_format"),
        ({"EWS_REDIS_PREFIX": ""}, "redis_prefix"),
    ],
)
def test_bad_env_values_name_the_field(env: dict[str, str], field: str) -> None:
    """A bad value fails with SettingsError whose message names the field."""
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('partitions = "4"\n', "partitions"),
        ("kafka_bootstrap = 9092\n", "kafka_bootstrap"),
        ('kafka_idempotent_producer = "false"\n', "kafka_idempotent_producer"),
        ("partitions = true\n", "partitions"),
        ('no_such_setting = "x"\n', "no_such_setting"),
        ('[topics]\nno_such_topic = "x"\n', "no_such_topic"),
        ("partitions = [\n", "ews.toml"),
    ],
)
def test_bad_files_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    """Unknown keys, wrong types and bad TOML in the file fail naming the field (or the file)."""
    with pytest.raises(SettingsError) as info:
        load_settings({}, file=_file(tmp_path, text))
    assert field in str(info.value)


def test_missing_file_is_a_settings_error(tmp_path: Path) -> None:
    """A config path that does not exist fails with SettingsError naming the path."""
    missing = tmp_path / "absent.toml"
    with pytest.raises(SettingsError, match=r"absent\.toml"):
        load_settings({"EWS_CONFIG": str(missing)})


@pytest.mark.parametrize(
    "text", ["[topics]\ntransactions = 5\n", 'topics = "x"\n', "[topics]\ntransactions = ''\n"]
)
def test_bad_topics_in_file_name_the_field(tmp_path: Path, text: str) -> None:
    """A wrong-typed or empty topic name in the file fails with SettingsError naming topics."""
    with pytest.raises(SettingsError, match="topics"):
        load_settings({}, file=_file(tmp_path, text))


def test_nan_retry_is_rejected() -> None:
    """sink_retry_max_s must be a positive number; NaN is not one."""
    with pytest.raises(SettingsError, match="sink_retry_max_s"):
        load_settings({"EWS_SINK_RETRY_MAX_S": "nan"})


def test_secrets_never_appear_in_repr() -> None:
    """Passwords are kept out of repr() and str() of the settings."""
    s = load_settings(
        {
            "EWS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "EWS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "EWS_KAFKA_SASL_USERNAME": "svc-ews",
            "EWS_KAFKA_SASL_PASSWORD": "kafka-secret-31337",
            "EWS_REDIS_PASSWORD": "redis-secret-42424",
        }
    )
    assert s.kafka_sasl_password == "kafka-secret-31337"
    assert s.redis_password == "redis-secret-42424"
    for text in (repr(s), str(s)):
        assert "kafka-secret-31337" not in text
        assert "redis-secret-42424" not in text
        assert "svc-ews" in text


def test_sasl_options_carry_the_password() -> None:
    """Kafka client options hand the SASL credentials to the client."""
    s = load_settings(
        {
            "EWS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "EWS_KAFKA_SASL_USERNAME": "svc",
            "EWS_KAFKA_SASL_PASSWORD": "pw",
        }
    )
    options = s.kafka_client_options()
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "PLAIN"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("svc", "pw")
    assert load_settings({}).kafka_client_options() == {"security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"EWS_TOPIC_PREFIX": "t7.", "EWS_TOPIC_DEADLETTER": "dlq"},
        {
            "EWS_PARTITIONS": "6",
            "EWS_KAFKA_IDEMPOTENT_PRODUCER": "false",
            "EWS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "EWS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
            "EWS_KAFKA_SASL_USERNAME": "u",
            "EWS_KAFKA_SASL_PASSWORD": "p",
            "EWS_REDIS_PASSWORD": "rp",
            "EWS_REDIS_URL": "rediss://cache:6380/2",
            "EWS_SINK_RETRY_MAX_S": "0.5",
            "EWS_RULES_FILE": "/etc/ews/rules.toml",
            "EWS_WEB_PORT": "8080",
        },
    ],
)
def test_env_vars_round_trip(env: dict[str, str]) -> None:
    """settings.env_vars, loaded again, gives equal settings (the child-process contract)."""
    s = load_settings(env)
    again = load_settings(s.env_vars)
    assert again == s
    assert again.env_vars == s.env_vars
    assert all(isinstance(v, str) for v in s.env_vars.values())


def test_settings_are_frozen() -> None:
    """Settings cannot be changed after they are built."""
    s = load_settings({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.partitions = 9  # type: ignore[misc]


def test_every_setting_is_documented_in_the_readme() -> None:
    """Each EWS_* variable the settings read appears in README.md's table."""
    import dataclasses
    from pathlib import Path

    from config.settings import Settings, Topics

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    names = [
        f.metadata["doc"]
        for cls in (Settings, Topics)
        for f in dataclasses.fields(cls)
        if "doc" in f.metadata
    ]
    assert names and not [n for n in names if f"`{n}`" not in readme]


@pytest.mark.parametrize(("raw", "expected"), [(None, 0), ("0", 0), ("1", 1), ("2", 2)])
def test_standby_replicas_reach_faust(raw: str | None, expected: int) -> None:
    """Standby copies of the tables are off unless asked for (they cost each worker of a group
    about a third of its throughput), and the setting is what the Faust app is given."""
    env = {} if raw is None else {"EWS_STANDBY_REPLICAS": raw}
    settings = load_settings(env)
    assert settings.standby_replicas == expected
    assert create_app(settings, load_rules(None)).conf.table_standby_replicas == expected


@pytest.mark.parametrize("raw", ["-1", "9"])
def test_standby_replicas_out_of_range_name_the_field(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"standby_replicas.*EWS_STANDBY_REPLICAS"):
        load_settings({"EWS_STANDBY_REPLICAS": raw})
