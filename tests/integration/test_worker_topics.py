"""A worker creates its tables' changelog topics, compacted, before Faust starts.

Left to Faust, workers starting together race to create them, and a group leader that assigns
before a new topic's metadata reached it leaves the topic out; the worker whose global table
is then never recovered never joins (seen in the three-worker scenario)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from config.rules import load_rules
from config.settings import Settings
from streams.app import create_app
from streams.localstack import ApacheKafka, RedisServer
from streams.topics import ensure_topics
from streams.worker import changelogs
from tests.support import isolated_settings

pytestmark = pytest.mark.kafka


async def _cleanup_policies(settings: Settings, names: list[str]) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
        responses = await admin.describe_configs(resources)
    finally:
        await admin.close()
    policies = {}
    for response in responses:
        for _, _, _, name, entries in response.resources:
            for entry in entries:
                if entry[0] == "cleanup.policy":
                    policies[name] = entry[1]
    return policies


def test_the_tables_changelogs_exist_compacted_before_the_worker_starts(
    kafka: ApacheKafka, redis_server: RedisServer
) -> None:
    settings = isolated_settings(kafka.bootstrap, redis_server.url, model_learning=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        wanted = changelogs(create_app(settings, load_rules()))
        assert wanted == {
            f"{settings.app_id}-customers-changelog": settings.partitions,
            f"{settings.app_id}-model-changelog": 1,
            f"{settings.app_id}-trainer-changelog": 1,
        }
        counts = loop.run_until_complete(ensure_topics(settings, changelogs=wanted))
        assert {name: counts[name] for name in wanted} == wanted
        policies = loop.run_until_complete(_cleanup_policies(settings, list(wanted)))
        assert policies == dict.fromkeys(wanted, "compact")
    finally:
        asyncio.set_event_loop(None)
        loop.close()
