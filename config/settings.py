"""One frozen, typed settings object built once at start.

Sources, later ones win: the defaults below, an optional TOML file (``EWS_CONFIG`` or an explicit
path), then ``EWS_*`` environment variables. Each field documents its variable in its metadata.
Nothing here reads the environment at import time: callers pass a mapping to :func:`load_settings`.
A bad value raises :class:`SettingsError` naming the field.
"""

from __future__ import annotations

import dataclasses
import math
import re
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ENV_PREFIX = "EWS_"
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the field."""


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclass(frozen=True, slots=True)
class Topics:
    """Kafka topic names. All inputs are keyed by ``customer_id`` and co-partitioned."""

    transactions: str = field(default="ews.transactions", metadata=_doc("EWS_TOPIC_TRANSACTIONS"))
    repayments: str = field(default="ews.repayments", metadata=_doc("EWS_TOPIC_REPAYMENTS"))
    outcomes: str = field(default="ews.outcomes", metadata=_doc("EWS_TOPIC_OUTCOMES"))
    feedback: str = field(default="ews.feedback", metadata=_doc("EWS_TOPIC_FEEDBACK"))
    notifications: str = field(
        default="ews.notifications", metadata=_doc("EWS_TOPIC_NOTIFICATIONS")
    )
    deadletter: str = field(default="ews.deadletter", metadata=_doc("EWS_TOPIC_DEADLETTER"))
    training: str = field(default="ews.training", metadata=_doc("EWS_TOPIC_TRAINING"))

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        """Topic names under another prefix, e.g. ``t42.`` for an isolated test."""
        return cls(*(f"{prefix}{f.name}" for f in dataclasses.fields(cls)))

    @property
    def inputs(self) -> tuple[str, str, str, str]:
        return (self.transactions, self.repayments, self.outcomes, self.feedback)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a worker, the CLI and the demo need. Build it with :func:`load_settings`."""

    kafka_bootstrap: str = field(default="127.0.0.1:9092", metadata=_doc("EWS_KAFKA_BOOTSTRAP"))
    kafka_security_protocol: str = field(
        default="PLAINTEXT", metadata=_doc("EWS_KAFKA_SECURITY_PROTOCOL")
    )
    kafka_sasl_mechanism: str | None = field(
        default=None, metadata=_doc("EWS_KAFKA_SASL_MECHANISM")
    )
    kafka_sasl_username: str | None = field(default=None, metadata=_doc("EWS_KAFKA_SASL_USERNAME"))
    kafka_sasl_password: str | None = field(
        default=None, repr=False, metadata=_doc("EWS_KAFKA_SASL_PASSWORD")
    )
    kafka_ssl_cafile: str | None = field(default=None, metadata=_doc("EWS_KAFKA_SSL_CAFILE"))
    kafka_ssl_certfile: str | None = field(  # client certificate (mutual TLS), PEM
        default=None, metadata=_doc("EWS_KAFKA_SSL_CERTFILE")
    )
    kafka_ssl_keyfile: str | None = field(default=None, metadata=_doc("EWS_KAFKA_SSL_KEYFILE"))
    kafka_session_timeout_s: float = field(
        default=10.0, metadata=_doc("EWS_KAFKA_SESSION_TIMEOUT_S")
    )
    kafka_idempotent_producer: bool = field(
        default=True, metadata=_doc("EWS_KAFKA_IDEMPOTENT_PRODUCER")
    )
    redis_url: str = field(default="redis://127.0.0.1:6379/0", metadata=_doc("EWS_REDIS_URL"))
    redis_password: str | None = field(
        default=None, repr=False, metadata=_doc("EWS_REDIS_PASSWORD")
    )
    redis_ssl_cafile: str | None = field(  # CA bundle for rediss:// (TLS)
        default=None, metadata=_doc("EWS_REDIS_SSL_CAFILE")
    )
    redis_prefix: str = field(default="ews:", metadata=_doc("EWS_REDIS_PREFIX"))
    redis_stream_maxlen: int = field(default=100_000, metadata=_doc("EWS_REDIS_STREAM_MAXLEN"))
    redis_dedupe_ttl_s: int = field(default=30 * 86_400, metadata=_doc("EWS_REDIS_DEDUPE_TTL_S"))
    redis_customer_ttl_s: int = field(
        default=400 * 86_400, metadata=_doc("EWS_REDIS_CUSTOMER_TTL_S")
    )
    redis_history_len: int = field(default=50, metadata=_doc("EWS_REDIS_HISTORY_LEN"))
    app_id: str = field(default="ews-worker", metadata=_doc("EWS_APP_ID"))
    topic_prefix: str | None = field(default=None, metadata=_doc("EWS_TOPIC_PREFIX"))
    topics: Topics = field(default_factory=Topics)
    partitions: int = field(default=4, metadata=_doc("EWS_PARTITIONS"))
    replication_factor: int = field(default=1, metadata=_doc("EWS_REPLICATION_FACTOR"))
    store: str = field(default="memory://", metadata=_doc("EWS_STORE"))
    data_dir: str = field(default=".ews-data", metadata=_doc("EWS_DATA_DIR"))
    max_message_bytes: int = field(default=64 * 1024, metadata=_doc("EWS_MAX_MESSAGE_BYTES"))
    rules_file: str | None = field(default=None, metadata=_doc("EWS_RULES_FILE"))
    model_version: str = field(default="scorecard-0", metadata=_doc("EWS_MODEL_VERSION"))
    model_learning: bool = field(default=True, metadata=_doc("EWS_MODEL_LEARNING"))
    model_params_file: str | None = field(default=None, metadata=_doc("EWS_MODEL_PARAMS_FILE"))
    model_publish_every: int = field(default=100, metadata=_doc("EWS_MODEL_PUBLISH_EVERY"))
    web_port: int = field(default=0, metadata=_doc("EWS_WEB_PORT"))  # 0: no web server
    web_host: str | None = field(  # how other workers reach this one (default: the hostname)
        default=None, metadata=_doc("EWS_WEB_HOST")
    )
    log_format: str = field(default="auto", metadata=_doc("EWS_LOG_FORMAT"))
    log_level: str = field(default="info", metadata=_doc("EWS_LOG_LEVEL"))
    sink_retry_max_s: float = field(default=10.0, metadata=_doc("EWS_SINK_RETRY_MAX_S"))
    merge_idle_s: float = field(default=0.05, metadata=_doc("EWS_MERGE_IDLE_S"))
    state_cache_customers: int = field(default=50_000, metadata=_doc("EWS_STATE_CACHE_CUSTOMERS"))
    standby_replicas: int = field(default=0, metadata=_doc("EWS_STANDBY_REPLICAS"))

    def __post_init__(self) -> None:
        _validate(self)

    def kafka_client_options(self) -> dict[str, Any]:
        """Security options for aiokafka clients (producers, consumers, admin)."""
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol in {"SSL", "SASL_SSL"}:
            context = ssl.create_default_context(cafile=self.kafka_ssl_cafile)
            if self.kafka_ssl_certfile:
                context.load_cert_chain(self.kafka_ssl_certfile, self.kafka_ssl_keyfile)
            options["ssl_context"] = context
        if self.kafka_security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.kafka_sasl_mechanism or "PLAIN"
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = self.kafka_sasl_password
        return options

    def redis_client_options(self) -> dict[str, Any]:
        """AUTH and TLS options for redis-py clients (``Redis.from_url(url, **options)``)."""
        options: dict[str, Any] = {"password": self.redis_password}
        if self.redis_ssl_cafile:
            options["ssl_ca_certs"] = self.redis_ssl_cafile
        return options

    @property
    def env_vars(self) -> dict[str, str]:
        """The environment that reproduces these settings in a child process."""
        env: dict[str, str] = {}
        for f in dataclasses.fields(self):
            if f.name == "topics":
                continue
            value = getattr(self, f.name)
            if value is not None:
                env[f.metadata["doc"]] = _render(value)
        for f in dataclasses.fields(Topics):
            env[f.metadata["doc"]] = getattr(self.topics, f.name)
        return env


_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "bool": bool,
    "float": (int, float),
}


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _validate(s: Settings) -> None:
    def fail(name: str, why: str) -> None:
        raise SettingsError(f"{name} ({ENV_PREFIX}{name.upper()}): {why}")

    for f in dataclasses.fields(s):
        value = getattr(s, f.name)
        expected = _TYPES.get(str(f.type).replace(" | None", ""))
        if expected is None or (value is None and "None" in str(f.type)):
            continue
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
            fail(f.name, f"expected {f.type!s}, got {type(value).__name__} {value!r}")

    for host_port in s.kafka_bootstrap.split(","):
        host, _, port = host_port.strip().rpartition(":")
        if not host or not port.isdigit():
            fail("kafka_bootstrap", f"expected host:port[,host:port], got {s.kafka_bootstrap!r}")
    if s.kafka_security_protocol not in {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}:
        fail("kafka_security_protocol", f"unknown protocol {s.kafka_security_protocol!r}")
    if s.kafka_sasl_mechanism not in {None, "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}:
        fail("kafka_sasl_mechanism", f"unknown mechanism {s.kafka_sasl_mechanism!r}")
    if s.kafka_security_protocol.startswith("SASL"):
        for name in ("kafka_sasl_username", "kafka_sasl_password"):
            if not getattr(s, name):
                fail(name, f"required with {s.kafka_security_protocol}")
    for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile", "redis_ssl_cafile"):
        path = getattr(s, name)
        if path is not None and not Path(path).is_file():
            fail(name, f"no such file {path!r}")
    if s.kafka_ssl_keyfile and not s.kafka_ssl_certfile:
        fail("kafka_ssl_keyfile", "given without kafka_ssl_certfile")
    if s.redis_ssl_cafile and urlparse(s.redis_url).scheme != "rediss":
        fail("redis_ssl_cafile", "needs a rediss:// redis_url")
    if urlparse(s.redis_url).scheme not in {"redis", "rediss", "unix"}:
        fail("redis_url", f"expected redis://, rediss:// or unix://, got {s.redis_url!r}")
    if not s.redis_prefix:
        fail("redis_prefix", "must not be empty")
    for name in (
        "partitions",
        "replication_factor",
        "max_message_bytes",
        "redis_stream_maxlen",
        "redis_dedupe_ttl_s",
        "redis_customer_ttl_s",
        "redis_history_len",
        "model_publish_every",
        "state_cache_customers",
    ):
        if getattr(s, name) < 1:
            fail(name, f"must be at least 1, got {getattr(s, name)}")
    if not 0 <= s.standby_replicas <= 8:
        fail("standby_replicas", f"must be between 0 and 8, got {s.standby_replicas}")
    if not 0 <= s.web_port < 65536:
        fail("web_port", f"must be 0 (off) or a port, got {s.web_port}")
    if not 6.0 <= s.kafka_session_timeout_s <= 300.0:  # also false for NaN
        fail("kafka_session_timeout_s", "must be between 6 and 300 seconds (broker limits)")
    if not (math.isfinite(s.sink_retry_max_s) and s.sink_retry_max_s > 0):
        fail("sink_retry_max_s", "must be a positive number")
    if not 0.0 <= s.merge_idle_s <= 10.0:  # also false for NaN
        fail("merge_idle_s", "must be between 0 and 10 seconds")
    for f in dataclasses.fields(Topics):
        name = getattr(s.topics, f.name)
        if not isinstance(name, str) or not _TOPIC_NAME.fullmatch(name):
            raise SettingsError(
                f"topics.{f.name} ({f.metadata['doc']}): expected a Kafka topic name, got {name!r}"
            )
    if not (s.store.startswith("memory://") or s.store.startswith("rocksdb://")):
        fail("store", f"expected memory:// or rocksdb://, got {s.store!r}")
    if s.log_format not in {"auto", "json", "console"}:
        fail("log_format", f"expected auto, json or console, got {s.log_format!r}")
    if s.log_level not in {"debug", "info", "warn", "warning", "error"}:
        fail("log_level", f"expected debug, info, warn or error, got {s.log_level!r}")


def load_settings(
    env: Mapping[str, str], file: str | Path | None = None, **overrides: Any
) -> Settings:
    """Build settings: defaults, then ``file`` (or ``EWS_CONFIG``), then ``env``, then overrides.

    The TOML file uses the field names (``kafka_bootstrap = "..."``) and a ``[topics]`` table.
    """
    values: dict[str, Any] = {}
    topic_values: dict[str, Any] = {}
    path = file or env.get(f"{ENV_PREFIX}CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"config file {path}: {exc}") from exc
        file_topics = data.pop("topics", {})
        if not isinstance(file_topics, dict):
            raise SettingsError(f"config file {path}: [topics] must be a table")
        topic_values.update(file_topics)
        values.update(data)
    for f in dataclasses.fields(Settings):
        if f.name != "topics" and f.metadata["doc"] in env:
            values[f.name] = _parse(f, env[f.metadata["doc"]])
    for f in dataclasses.fields(Topics):
        if f.metadata["doc"] in env:
            topic_values[f.name] = env[f.metadata["doc"]]
    values.update(overrides)
    prefix = values.get("topic_prefix")
    base = Topics.with_prefix(prefix) if prefix else Topics()
    unknown_topics = set(topic_values) - {f.name for f in dataclasses.fields(Topics)}
    if unknown_topics:
        raise SettingsError(f"topics: unknown topic names {sorted(unknown_topics)}")
    if "topics" not in values:
        values["topics"] = dataclasses.replace(base, **topic_values)
    unknown = set(values) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise SettingsError(f"unknown settings {sorted(unknown)}")
    try:
        return Settings(**values)
    except TypeError as exc:
        raise SettingsError(str(exc)) from exc


def _parse(f: dataclasses.Field[Any], raw: str) -> Any:
    kind = str(f.type)
    name = f"{f.name} ({f.metadata['doc']})"
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{name}: expected true or false, got {raw!r}")
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    return raw or None if "None" in kind else raw
