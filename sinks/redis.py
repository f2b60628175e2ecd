"""Redis view of the alerts: customer hash, history, watch-list, alert stream, live channel.

Each alert is written by one Lua script, atomically: a dedupe key ``alert:{alert_id}`` is set
first, and if it already existed nothing else is written, so a retried batch writes nothing twice.
The dedupe key holds ``pending {stream id}`` until the alert is confirmed on the notifications
topic, then ``published {stream id}`` (:meth:`RedisSink.mark_published`); :meth:`RedisSink.write`
returns what is still pending, with its stream entry id, so a retry publishes exactly what was not
yet confirmed, and the notification can carry the id (``ews redis rebuild`` restores the stream
with the same ids).
Every key has a TTL or a size cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from detectors.events import Feedback
from sinks.base import Outgoing, Sink, SinkUnavailable

if TYPE_CHECKING:
    from config.settings import Settings

# KEYS: dedupe, customer hash, history list, watchlist zset, alert stream
# ARGV: alert_id, payload, level, score, customer_id, event_time, model_version, rules_version,
#       reasons json, dedupe ttl, customer ttl, history len, stream maxlen, channel
_WRITE_ALERT = """
if redis.call('SET', KEYS[1], 'pending', 'NX', 'EX', ARGV[10]) == false then
  return redis.call('GET', KEYS[1])
end
redis.call('HSET', KEYS[2], 'level', ARGV[3], 'score', ARGV[4], 'reasons', ARGV[9],
           'updated_at', ARGV[6], 'model_version', ARGV[7], 'rules_version', ARGV[8],
           'last_alert_id', ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[11])
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[12]) - 1)
redis.call('EXPIRE', KEYS[3], ARGV[11])
if ARGV[3] == 'none' then
  redis.call('ZREM', KEYS[4], ARGV[5])
else
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[5])
end
local id = redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[13], '*', 'alert_id', ARGV[1],
                     'alert', ARGV[2])
redis.call('SET', KEYS[1], 'pending ' .. id, 'XX', 'KEEPTTL')
redis.call('PUBLISH', ARGV[14], ARGV[2])
return 'pending ' .. id
"""

# KEYS: feedback dedupe, history list.
# ARGV: entry, dedupe ttl, customer ttl, history len, channel ('' for none)
_WRITE_FEEDBACK = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) == false then
  return 0
end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
if ARGV[5] ~= '' then
  redis.call('PUBLISH', ARGV[5], ARGV[1])
end
return 1
"""

# KEYS: dedupe keys. Marks them published, keeping their TTL and the stream entry id.
_MARK_PUBLISHED = """
for i, key in ipairs(KEYS) do
  local value = redis.call('GET', key)
  if value then
    redis.call('SET', key, string.gsub(value, '^pending', 'published'), 'XX', 'KEEPTTL')
  end
end
return #KEYS
"""


@dataclass(frozen=True, slots=True)
class RedisLayout:
    """Key names under a configurable prefix (default ``ews:``)."""

    prefix: str = "ews:"

    def customer(self, customer_id: str) -> str:
        return f"{self.prefix}customer:{customer_id}"

    def history(self, customer_id: str) -> str:
        return f"{self.prefix}customer:{customer_id}:history"

    def dedupe(self, alert_id: str) -> str:
        return f"{self.prefix}alert:{alert_id}"

    def feedback_dedupe(self, event_id: str) -> str:
        return f"{self.prefix}feedback:{event_id}"

    @property
    def watchlist(self) -> str:
        return f"{self.prefix}watchlist"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}alerts"

    @property
    def channel(self) -> str:
        return f"{self.prefix}notifications"


class RedisSink(Sink):
    def __init__(
        self,
        url: str,
        *,
        layout: RedisLayout,
        password: str | None = None,
        ssl_ca_certs: str | None = None,
        dedupe_ttl_s: int = 30 * 86_400,
        customer_ttl_s: int = 400 * 86_400,
        history_len: int = 50,
        stream_maxlen: int = 100_000,
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.layout = layout
        self.dedupe_ttl_s = dedupe_ttl_s
        self.customer_ttl_s = customer_ttl_s
        self.history_len = history_len
        self.stream_maxlen = stream_maxlen
        tls: dict[str, Any] = {"ssl_ca_certs": ssl_ca_certs} if ssl_ca_certs else {}
        self.client = aioredis.Redis.from_url(
            url,
            password=password,
            **tls,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        self._write = self.client.register_script(_WRITE_ALERT)
        self._mark = self.client.register_script(_MARK_PUBLISHED)
        self._write_feedback = self.client.register_script(_WRITE_FEEDBACK)

    async def start(self) -> None:
        await self.ping()

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise SinkUnavailable(f"cannot reach Redis at {safe_url(self.url)}: {exc}") from exc

    async def write_batch(self, batch: Sequence[Outgoing]) -> None:
        await self.write(batch)

    async def write(self, batch: Sequence[Outgoing]) -> list[Outgoing]:
        """Write every alert once; return those not yet confirmed on the notifications topic."""
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for out in batch:
                    await self._write(keys=self._keys(out), args=self._args(out), client=pipe)
                results = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise SinkUnavailable(f"Redis write failed: {exc}") from exc
        pending = []
        for out, status in zip(batch, results, strict=True):
            state, _, stream_id = bytes(status).decode().partition(" ")
            if state != "published":
                pending.append(replace(out, stream_id=stream_id or None))
        return pending

    async def write_feedback(self, batch: Sequence[Feedback], *, publish: bool = True) -> int:
        """Append each answer to its customer's history (the audit trail) once, and publish
        it on the live channel; an answer already written (by ``event_id``) is skipped.
        Returns how many were new."""
        if not batch:
            return 0
        lay = self.layout
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for answer in batch:
                    await self._write_feedback(
                        keys=[
                            lay.feedback_dedupe(answer.event_id),
                            lay.history(answer.customer_id),
                        ],
                        args=[
                            feedback_entry(answer),
                            self.dedupe_ttl_s,
                            self.customer_ttl_s,
                            self.history_len,
                            lay.channel if publish else "",
                        ],
                        client=pipe,
                    )
                results = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise SinkUnavailable(f"Redis write failed: {exc}") from exc
        return sum(int(r) for r in results)

    async def mark_published(self, batch: Sequence[Outgoing]) -> None:
        if not batch:
            return
        keys = [self.layout.dedupe(out.alert.alert_id) for out in batch]
        try:
            await self._mark(keys=keys)
        except (RedisError, OSError) as exc:
            raise SinkUnavailable(f"Redis write failed: {exc}") from exc

    async def close(self) -> None:
        await self.client.aclose()

    async def restore(self, batch: Sequence[Outgoing], now_ms: int, chunk: int = 1000) -> int:
        """Write back alerts read from the notifications topic, each with the ``stream_id`` it
        first had, in stream order, as :meth:`write` did: the same stream entries, history
        lists, customer hashes and watch-list, and expiries counted from each alert's original
        write time (its stream id), not from now. Alerts at or below the stream's last id are
        skipped, so a second run adds nothing. Nothing is published. Returns how many were
        written. For a Redis that lost its data, with no worker writing meanwhile."""
        lay = self.layout
        last = await self.client.xrevrange(lay.alerts, count=1)
        top = _stream_id(_text(last[0][0])) if last else (-1, -1)
        customer_ttl_ms = self.customer_ttl_s * 1000
        written_at: dict[str, int] = {}  # customer -> write time of their last alert
        todo = [o for o in batch if o.stream_id and _stream_id(o.stream_id) > top]
        for start in range(0, len(todo), chunk):
            async with self.client.pipeline(transaction=False) as pipe:
                for out in todo[start : start + chunk]:
                    assert out.stream_id is not None
                    a = out.alert
                    ms = _stream_id(out.stream_id)[0]
                    keys = (lay.customer(a.customer_id), lay.history(a.customer_id))
                    before = written_at.get(a.customer_id)
                    if before is not None and ms - before > customer_ttl_ms:
                        pipe.delete(*keys)  # they had expired before this alert came
                    fields = self._customer_fields(out)
                    mapping: dict[Any, Any] = fields
                    pipe.hset(keys[0], mapping=mapping)
                    pipe.lpush(keys[1], out.payload)
                    pipe.ltrim(keys[1], 0, self.history_len - 1)
                    if a.level.label == "none":
                        pipe.zrem(lay.watchlist, a.customer_id)
                    else:
                        pipe.zadd(lay.watchlist, {a.customer_id: float(fields["score"])})
                    pipe.xadd(
                        lay.alerts,
                        {"alert_id": a.alert_id, "alert": out.payload},
                        id=out.stream_id,
                        maxlen=self.stream_maxlen,
                        approximate=True,
                    )
                    dedupe_until = ms + self.dedupe_ttl_s * 1000
                    if dedupe_until > now_ms:
                        pipe.set(
                            lay.dedupe(a.alert_id), f"published {out.stream_id}", pxat=dedupe_until
                        )
                    written_at[a.customer_id] = ms
                await pipe.execute()
        async with self.client.pipeline(transaction=False) as pipe:
            for customer_id, ms in written_at.items():
                pipe.pexpireat(lay.customer(customer_id), ms + customer_ttl_ms)
                pipe.pexpireat(lay.history(customer_id), ms + customer_ttl_ms)
            await pipe.execute()
        return len(todo)

    def _keys(self, out: Outgoing) -> list[str]:
        a = out.alert
        return [
            self.layout.dedupe(a.alert_id),
            self.layout.customer(a.customer_id),
            self.layout.history(a.customer_id),
            self.layout.watchlist,
            self.layout.alerts,
        ]

    def _customer_fields(self, out: Outgoing) -> dict[str, str]:
        """The customer hash after this alert (field names as in :data:`_WRITE_ALERT`)."""
        a = out.alert
        return {
            "level": a.level.label,
            "score": f"{a.score:.6f}",
            "reasons": orjson.dumps([r.to_dict() for r in a.reasons]).decode(),
            "updated_at": a.event_time.isoformat(),
            "model_version": a.model_version,
            "rules_version": a.rules_version,
            "last_alert_id": a.alert_id,
        }

    def _args(self, out: Outgoing) -> list[str | bytes | int]:
        a = out.alert
        fields = self._customer_fields(out)
        return [
            a.alert_id,
            out.payload,
            fields["level"],
            fields["score"],
            a.customer_id,
            fields["updated_at"],
            fields["model_version"],
            fields["rules_version"],
            fields["reasons"],
            self.dedupe_ttl_s,
            self.customer_ttl_s,
            self.history_len,
            self.stream_maxlen,
            self.layout.channel,
        ]


def feedback_entry(answer: Feedback) -> bytes:
    """The audit entry of an answer in the customer's history (``kind`` ``feedback``)."""

    def rfc3339(ts: datetime | None) -> str | None:
        return None if ts is None else ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    return orjson.dumps(
        {
            "kind": "feedback",
            "event_id": answer.event_id,
            "customer_id": answer.customer_id,
            "alert_id": answer.alert_id,
            "action": answer.action.value,
            "actor": answer.actor,
            "note": answer.note,
            "ts": rfc3339(answer.ts),
            "until": rfc3339(answer.until),
            "reason_code": answer.reason_code,
        }
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _stream_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def safe_url(url: str) -> str:
    """The URL without a password, for messages and logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


def redis_sink(settings: Settings) -> RedisSink:
    """The Redis sink as the settings describe it (the worker's, and ``ews redis rebuild``'s)."""
    return RedisSink(
        settings.redis_url,
        layout=RedisLayout(settings.redis_prefix),
        password=settings.redis_password,
        ssl_ca_certs=settings.redis_ssl_cafile,
        dedupe_ttl_s=settings.redis_dedupe_ttl_s,
        customer_ttl_s=settings.redis_customer_ttl_s,
        history_len=settings.redis_history_len,
        stream_maxlen=settings.redis_stream_maxlen,
    )
