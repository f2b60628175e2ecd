"""Wire contracts v1: decode and validate input messages into the domain types of ``detectors/``.

Every way a message can be bad raises :class:`DecodeError` with a stable ``code`` and a message
that names the field, so the worker can dead-letter it with a reason and move on.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

import orjson

from config.settings import Topics
from detectors.events import (
    Channel,
    Direction,
    Event,
    Feedback,
    FeedbackAction,
    Outcome,
    OutcomeKind,
    Repayment,
    RepaymentType,
    Source,
    Transaction,
    TxStatus,
)

SCHEMA_VERSION = 1
MAX_ID_LENGTH = 128
MAX_NOTE_LENGTH = 2000
_MAX_AMOUNT = Decimal("1e15")
_DECIMAL = re.compile(r"-?[0-9]{1,18}(\.[0-9]{1,9})?")

E = TypeVar("E", bound=StrEnum)


class ErrorCode(StrEnum):
    OVERSIZED = "oversized"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    SCHEMA_VERSION = "unsupported_schema_version"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_ENUM = "unknown_enum_value"
    BAD_AMOUNT = "bad_amount"
    BAD_TIME = "bad_time"
    NON_UTC_TIME = "non_utc_time"
    FUTURE_TIME = "time_in_future"
    BAD_ID = "bad_id"
    KEY_MISMATCH = "key_mismatch"
    UNKNOWN_TOPIC = "unknown_topic"
    INCONSISTENT = "inconsistent_fields"


class DecodeError(ValueError):
    """A message that does not meet its contract. ``code`` is stable; ``message`` is for people."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message


def parse_object(raw: bytes | None, max_bytes: int) -> dict[str, Any]:
    """Size check, JSON parse and schema version: the steps shared by every contract."""
    if not raw:
        raise DecodeError(ErrorCode.NOT_JSON, "empty message (no value)")
    if len(raw) > max_bytes:
        raise DecodeError(ErrorCode.OVERSIZED, f"{len(raw)} bytes exceeds the {max_bytes} limit")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(ErrorCode.NOT_JSON, f"not valid UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DecodeError(
            ErrorCode.NOT_OBJECT, f"expected a JSON object, got {type(data).__name__}"
        )
    version = data.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise DecodeError(
            ErrorCode.SCHEMA_VERSION, f"schema_version must be {SCHEMA_VERSION}, got {version!r}"
        )
    return data


def decode_transaction(data: dict[str, Any]) -> Transaction:
    return _fast_transaction(data) or _checked_transaction(data)


def decode_repayment(data: dict[str, Any]) -> Repayment:
    return _fast_repayment(data) or _checked_repayment(data)


def _checked_transaction(data: dict[str, Any]) -> Transaction:
    return Transaction(
        event_id=_id(data, "event_id"),
        customer_id=_id(data, "customer_id"),
        account_id=_id(data, "account_id"),
        ts=_time(data, "ts"),
        amount=_money(data, "amount", positive=True),
        currency=_currency(data),
        direction=_enum(data, "direction", Direction),
        channel=_enum(data, "channel", Channel),
        status=_enum(data, "status", TxStatus)
        if data.get("status") is not None
        else TxStatus.POSTED,
        mcc=_optional(data, "mcc", _str),
        counterparty=_optional(data, "counterparty", _str),
        balance_after=_optional(data, "balance_after", _money),
        credit_limit=_optional(data, "credit_limit", _money_or_zero),
    )


def _checked_repayment(data: dict[str, Any]) -> Repayment:
    return Repayment(
        event_id=_id(data, "event_id"),
        customer_id=_id(data, "customer_id"),
        loan_id=_id(data, "loan_id"),
        ts=_time(data, "ts"),
        type=_enum(data, "type", RepaymentType),
        instalment_no=_int(data, "instalment_no"),
        due_date=_date(data, "due_date"),
        amount_due=_money_or_zero(data, "amount_due"),
        amount_paid=_money_or_zero(data, "amount_paid"),
        outstanding_principal=_optional(data, "outstanding_principal", _money_or_zero),
    )


def decode_outcome(data: dict[str, Any]) -> Outcome:
    return Outcome(
        event_id=_id(data, "event_id"),
        customer_id=_id(data, "customer_id"),
        ts=_time(data, "ts"),
        outcome=_enum(data, "outcome", OutcomeKind),
    )


def decode_feedback(data: dict[str, Any]) -> Feedback:
    """A person's answer; ``until`` (after ``ts``) goes with a snooze and only with one, as
    does ``reason_code``."""
    action = _enum(data, "action", FeedbackAction)
    ts = _time(data, "ts")
    until = _optional(data, "until", _time)
    reason_code = _optional(data, "reason_code", _id)
    if action is FeedbackAction.SNOOZE:
        if until is None:
            raise DecodeError(ErrorCode.MISSING_FIELD, "until is required for a snooze")
        if until <= ts:
            raise DecodeError(ErrorCode.INCONSISTENT, f"until {until} is not after ts {ts}")
    elif until is not None or reason_code is not None:
        raise DecodeError(
            ErrorCode.INCONSISTENT, f"until and reason_code go with a snooze, not {action}"
        )
    return Feedback(
        event_id=_id(data, "event_id"),
        customer_id=_id(data, "customer_id"),
        ts=ts,
        action=action,
        actor=_id(data, "actor"),
        alert_id=_optional(data, "alert_id", _id),
        until=until,
        reason_code=reason_code,
        note=_optional(data, "note", _note),
    )


Decoder = Callable[[dict[str, Any]], Event]


def decoders(topics: Topics) -> dict[str, Decoder]:
    """The contract each input topic carries."""
    return {
        topics.transactions: decode_transaction,
        topics.repayments: decode_repayment,
        topics.outcomes: decode_outcome,
        topics.feedback: decode_feedback,
    }


MAX_CLOCK_SKEW = timedelta(days=1)


def not_after(now: datetime) -> datetime:
    """The latest event time accepted when a message is read at wall time ``now``."""
    return now + MAX_CLOCK_SKEW


def decode(
    decoder: Decoder,
    raw: bytes | None,
    key: bytes | None,
    max_bytes: int,
    latest: datetime | None = None,
) -> Event:
    """Decode one message; the key, when present, must be the event's ``customer_id``.

    An event time after ``latest`` (see :func:`not_after`) is refused: event time drives each
    partition's sweep clock, and one mistyped year would age every customer of the partition at
    once. Only this guard reads the wall clock, and a replay run later accepts a superset."""
    event = decoder(parse_object(raw, max_bytes))
    if latest is not None and event.ts > latest:
        raise DecodeError(
            ErrorCode.FUTURE_TIME,
            f"ts {event.ts.isoformat()} is after {latest.isoformat()}, the reading time plus "
            f"{MAX_CLOCK_SKEW.days} day",
        )
    if key is not None and key != event.customer_id.encode():
        raise DecodeError(
            ErrorCode.KEY_MISMATCH,
            f"message key {key[:64]!r} is not the customer_id {event.customer_id!r}",
        )
    return event


def dead_letter(
    raw: bytes | None,
    key: bytes | None,
    source: Source,
    error: DecodeError,
    first_seen: datetime,
    max_bytes: int = 64 * 1024,
) -> bytes:
    """The dead-letter record: the original bytes and where and why they failed.

    At most ``max_bytes`` of the payload and of the key are kept: a message the broker accepted
    can be too large to fit whole, in base64, in a dead letter (the producer would refuse it).
    ``payload_bytes`` is the original length, ``payload_truncated`` says whether bytes were cut;
    topic, partition and offset still find the whole message while the input topic keeps it."""
    payload = raw or b""
    return orjson.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "payload_b64": base64.b64encode(payload[:max_bytes]).decode(),
            "payload_bytes": len(payload),
            "payload_truncated": len(payload) > max_bytes,
            "key_b64": base64.b64encode(key[:max_bytes]).decode() if key is not None else None,
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "error_code": error.code.value,
            "error_message": error.message,
            "first_seen": first_seen.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
    )


# Field readers: each names the field in its error.


def _field(data: dict[str, Any], key: str) -> Any:
    if key not in data or data[key] is None:
        raise DecodeError(ErrorCode.MISSING_FIELD, f"{key} is required")
    return data[key]


def _optional(data: dict[str, Any], key: str, read: Callable[[dict[str, Any], str], Any]) -> Any:
    return None if data.get(key) is None else read(data, key)


def _str(data: dict[str, Any], key: str) -> str:
    value = _field(data, key)
    if not isinstance(value, str):
        raise DecodeError(ErrorCode.WRONG_TYPE, f"{key} must be a string, got {_kind(value)}")
    return value


def _id(data: dict[str, Any], key: str) -> str:
    value = _str(data, key)
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise DecodeError(
            ErrorCode.BAD_ID, f"{key} must be 1..{MAX_ID_LENGTH} printable characters"
        )
    return value


def _note(data: dict[str, Any], key: str) -> str:
    value = _str(data, key)
    if len(value) > MAX_NOTE_LENGTH:
        raise DecodeError(ErrorCode.WRONG_TYPE, f"{key} is over {MAX_NOTE_LENGTH} characters")
    return value


def _int(data: dict[str, Any], key: str) -> int:
    value = _field(data, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodeError(ErrorCode.WRONG_TYPE, f"{key} must be an integer, got {_kind(value)}")
    if value < 0:
        raise DecodeError(ErrorCode.WRONG_TYPE, f"{key} must not be negative, got {value}")
    return value


def _enum(data: dict[str, Any], key: str, enum: type[E]) -> E:
    value = _str(data, key)
    member = enum._value2member_map_.get(value)  # what enum(value) looks up, without its call
    if member is not None:
        return member  # type: ignore[return-value]
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise DecodeError(
            ErrorCode.BAD_ENUM, f"{key} {value[:40]!r} is not one of: {allowed}"
        ) from None


def _money(
    data: dict[str, Any], key: str, *, positive: bool = False, zero_ok: bool = False
) -> Decimal:
    """Money is a decimal string or an integer of minor units; never a binary float."""
    value = _field(data, key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DecodeError(
            ErrorCode.WRONG_TYPE,
            f"{key} must be a decimal string or integer minor units, got {_kind(value)}",
        )
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise DecodeError(ErrorCode.BAD_AMOUNT, f"{key} {value[:40]!r} is not a plain decimal")
    amount = Decimal(value) if isinstance(value, str) else Decimal(value).scaleb(-2)
    if abs(amount) >= _MAX_AMOUNT:
        raise DecodeError(ErrorCode.BAD_AMOUNT, f"{key} {value!r} is out of range")
    if positive and (amount < 0 or (amount == 0 and not zero_ok)):
        need = "zero or positive" if zero_ok else "positive"
        raise DecodeError(ErrorCode.BAD_AMOUNT, f"{key} must be {need}, got {value!r}")
    return amount


def _money_or_zero(data: dict[str, Any], key: str) -> Decimal:
    return _money(data, key, positive=True, zero_ok=True)


def _currency(data: dict[str, Any]) -> str:
    value = _str(data, "currency")
    if len(value) != 3 or not value.isascii() or not value.isalpha() or not value.isupper():
        raise DecodeError(ErrorCode.BAD_ID, f"currency must be an ISO 4217 code, got {value!r}")
    return value


def _time(data: dict[str, Any], key: str) -> datetime:
    value = _str(data, key)
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise DecodeError(
            ErrorCode.BAD_TIME, f"{key} {value[:40]!r} is not an RFC 3339 time"
        ) from None
    if "T" not in value.upper() or ts.tzinfo is None:
        raise DecodeError(ErrorCode.BAD_TIME, f"{key} {value!r} needs a date, time and zone")
    if ts.utcoffset() != timedelta(0):
        raise DecodeError(ErrorCode.NON_UTC_TIME, f"{key} {value!r} is not UTC")
    return ts


def _date(data: dict[str, Any], key: str) -> date:
    value = _str(data, key)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DecodeError(
            ErrorCode.BAD_TIME, f"{key} {value[:40]!r} is not a YYYY-MM-DD date"
        ) from None


def _kind(value: object) -> str:
    return type(value).__name__


# The fast path: the checks above in one pass for a message that passes them all. A message it
# is unsure of gets None, and the checked decoder above then decides and names the field; a test
# holds the two equal on every input the fast path accepts.

_DIRECTIONS = Direction._value2member_map_
_CHANNELS = Channel._value2member_map_
_TX_STATUSES = TxStatus._value2member_map_
_REPAYMENT_TYPES = RepaymentType._value2member_map_
_UTC = timedelta(0)
# At most 15 integer digits: below _MAX_AMOUNT by its form, so the fast path needs no comparison
# (a longer form, leading zeros and all, goes to the checked decoder).
_match_decimal = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,9})?").fullmatch


def _fast_transaction(data: dict[str, Any]) -> Transaction | None:
    get = data.get
    ids = (get("event_id"), get("customer_id"), get("account_id"))
    ts = _fast_time(get("ts"))
    amount = _fast_money(get("amount"))
    currency = get("currency")
    direction = _fast_member(_DIRECTIONS, get("direction"))
    channel = _fast_member(_CHANNELS, get("channel"))
    raw_status = get("status")
    status = TxStatus.POSTED if raw_status is None else _fast_member(_TX_STATUSES, raw_status)
    mcc, counterparty = get("mcc"), get("counterparty")
    raw_balance, raw_limit = get("balance_after"), get("credit_limit")
    balance = None if raw_balance is None else _fast_money(raw_balance)
    limit = None if raw_limit is None else _fast_money(raw_limit)
    if (
        not _fast_ids(ids)
        or ts is None
        or amount is None
        or amount <= 0
        or type(currency) is not str
        or len(currency) != 3
        or not (currency.isascii() and currency.isalpha() and currency.isupper())
        or direction is None
        or channel is None
        or status is None
        or (mcc is not None and type(mcc) is not str)
        or (counterparty is not None and type(counterparty) is not str)
        or (raw_balance is not None and balance is None)
        or (raw_limit is not None and (limit is None or limit < 0))
    ):
        return None
    return Transaction(
        event_id=ids[0],  # type: ignore[arg-type]
        customer_id=ids[1],  # type: ignore[arg-type]
        account_id=ids[2],  # type: ignore[arg-type]
        ts=ts,
        amount=amount,
        currency=currency,
        direction=direction,
        channel=channel,
        status=status,
        mcc=mcc,
        counterparty=counterparty,
        balance_after=balance,
        credit_limit=limit,
    )


def _fast_repayment(data: dict[str, Any]) -> Repayment | None:
    get = data.get
    ids = (get("event_id"), get("customer_id"), get("loan_id"))
    ts = _fast_time(get("ts"))
    kind = _fast_member(_REPAYMENT_TYPES, get("type"))
    instalment = get("instalment_no")
    raw_due_date = get("due_date")
    due, paid = _fast_money(get("amount_due")), _fast_money(get("amount_paid"))
    raw_principal = get("outstanding_principal")
    principal = None if raw_principal is None else _fast_money(raw_principal)
    if (
        not _fast_ids(ids)
        or ts is None
        or kind is None
        or type(instalment) is not int
        or instalment < 0
        or type(raw_due_date) is not str
        or due is None
        or due < 0
        or paid is None
        or paid < 0
        or (raw_principal is not None and (principal is None or principal < 0))
    ):
        return None
    try:
        due_date = date.fromisoformat(raw_due_date)
    except ValueError:
        return None
    return Repayment(
        event_id=ids[0],  # type: ignore[arg-type]
        customer_id=ids[1],  # type: ignore[arg-type]
        loan_id=ids[2],  # type: ignore[arg-type]
        ts=ts,
        type=kind,
        instalment_no=instalment,
        due_date=due_date,
        amount_due=due,
        amount_paid=paid,
        outstanding_principal=principal,
    )


def _fast_ids(values: tuple[Any, ...]) -> bool:
    for value in values:
        if type(value) is not str or not 0 < len(value) <= MAX_ID_LENGTH:
            return False
        if not value.isprintable():
            return False
    return True


def _fast_member(members: Mapping[str, Any], value: Any) -> Any:
    return members.get(value) if type(value) is str else None


def _fast_time(value: Any) -> datetime | None:
    if type(value) is not str or ("T" not in value and "t" not in value):
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None and ts.utcoffset() == _UTC else None


def _fast_money(value: Any) -> Decimal | None:
    if type(value) is str:
        return Decimal(value) if _match_decimal(value) else None
    if type(value) is int:
        amount = Decimal(value).scaleb(-2)
        return amount if abs(amount) < _MAX_AMOUNT else None
    return None
