"""Security settings: TLS and SASL options, Redis AUTH/TLS, and no pickle on any topic."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from config.rules import load_rules
from config.settings import SettingsError, load_settings
from sinks.redis import safe_url
from streams.app import create_app

SASL = {
    "EWS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "EWS_KAFKA_SASL_USERNAME": "svc-ews",
    "EWS_KAFKA_SASL_PASSWORD": "s3cret",
}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_mechanisms_reach_the_kafka_clients_over_tls(mechanism: str) -> None:
    """Every supported SASL mechanism is passed through, with a TLS context for SASL_SSL."""
    s = load_settings({**SASL, "EWS_KAFKA_SASL_MECHANISM": mechanism})
    options = s.kafka_client_options()
    assert options["sasl_mechanism"] == mechanism
    assert options["security_protocol"] == "SASL_SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["sasl_plain_password"] == "s3cret"


@pytest.mark.parametrize("missing", ["EWS_KAFKA_SASL_USERNAME", "EWS_KAFKA_SASL_PASSWORD"])
def test_sasl_without_credentials_stops_at_start(missing: str) -> None:
    """A SASL protocol without a username or password is a configuration error naming it."""
    env = {k: v for k, v in SASL.items() if k != missing}
    with pytest.raises(SettingsError, match=missing.removeprefix("EWS_").lower()):
        load_settings(env)


def test_tls_files_must_exist(tmp_path: Path) -> None:
    """A CA, certificate or key path that is not a file fails at start, not at first connect."""
    for name in ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE"):
        with pytest.raises(SettingsError, match=name.lower()):
            load_settings({f"EWS_{name}": str(tmp_path / "nope.pem")})
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    with pytest.raises(SettingsError, match=r"redis_ssl_cafile.*rediss://"):
        load_settings({"EWS_REDIS_SSL_CAFILE": str(ca)})


def test_redis_auth_and_tls_options() -> None:
    """Redis clients get the password, and the CA bundle for rediss://."""
    s = load_settings({"EWS_REDIS_PASSWORD": "pw", "EWS_REDIS_URL": "rediss://r:6380/0"})
    assert s.redis_client_options() == {"password": "pw"}
    assert safe_url("rediss://user:pw@r:6380/0") == "rediss://***@r:6380/0"


def test_no_topic_or_table_of_the_worker_is_read_with_pickle() -> None:
    """The worker's topics and tables use raw bytes or JSON codecs; pickle is never configured."""
    app = create_app(load_settings({}), load_rules(None))
    codecs = {app.conf.key_serializer, app.conf.value_serializer}
    for agent in app.agents.values():
        channel = agent.channel
        codecs |= {channel.key_serializer, channel.value_serializer}
    for table in app.tables.values():
        codecs |= {table.key_serializer, table.value_serializer}
        topic = table.changelog_topic
        codecs |= {topic.key_serializer, topic.value_serializer}
    codecs.discard(None)
    assert codecs <= {"raw", "json"}, codecs
