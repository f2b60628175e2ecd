"""Wire contracts v1: decoding and validating transactions and repayments, and dead letters."""

from __future__ import annotations

import base64
import re
import string
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.events import (
    Channel,
    Direction,
    Repayment,
    RepaymentType,
    Source,
    Transaction,
    TxStatus,
)
from streams import records
from streams.records import (
    MAX_ID_LENGTH,
    DecodeError,
    ErrorCode,
    dead_letter,
    decode,
    decode_repayment,
    decode_transaction,
    not_after,
    parse_object,
)

MAX_BYTES = 64 * 1024
FAST = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

TRANSACTION: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "tx-1",
    "customer_id": "cust-1",
    "account_id": "acc-1",
    "ts": "2025-01-31T10:15:00Z",
    "amount": "12.50",
    "currency": "EUR",
    "direction": "debit",
    "channel": "card",
    "status": "posted",
    "mcc": "5411",
    "counterparty": "Grocer Ltd",
    "balance_after": "-20.00",
    "credit_limit": "500",
}

REPAYMENT: dict[str, Any] = {
    "schema_version": 1,
    "event_id": "rp-1",
    "customer_id": "cust-1",
    "loan_id": "loan-1",
    "ts": "2025-02-01T00:00:00.250Z",
    "type": "payment",
    "instalment_no": 3,
    "due_date": "2025-01-31",
    "amount_due": "250.00",
    "amount_paid": 10000,
    "outstanding_principal": "4750.00",
}

# Status is left out: the design lists it among the optional fields, the decoder requires it.
TX_REQUIRED = (
    "event_id",
    "customer_id",
    "account_id",
    "ts",
    "amount",
    "currency",
    "direction",
    "channel",
)
REPAYMENT_REQUIRED = (
    "event_id",
    "customer_id",
    "loan_id",
    "ts",
    "type",
    "instalment_no",
    "due_date",
    "amount_due",
    "amount_paid",
)

DECODERS = {"transaction": decode_transaction, "repayment": decode_repayment}
TEMPLATES = {"transaction": TRANSACTION, "repayment": REPAYMENT}


def _raw(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data)


def _with(template: dict[str, Any], **changes: Any) -> dict[str, Any]:
    data = dict(template)
    data.update(changes)
    return data


def _without(template: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in template.items() if k != field}


def _code(kind: str, data: dict[str, Any] | bytes | None, key: bytes | None = None) -> ErrorCode:
    raw = data if isinstance(data, bytes | None) else _raw(data)
    with pytest.raises(DecodeError) as info:
        decode(DECODERS[kind], raw, key, MAX_BYTES)
    assert info.value.message
    return info.value.code


# Valid messages


def test_valid_transaction_decodes_to_domain_values() -> None:
    """A full transaction decodes to Decimal money, a UTC-aware time and enum members."""
    event = decode(decode_transaction, _raw(TRANSACTION), b"cust-1", MAX_BYTES)
    assert event == Transaction(
        event_id="tx-1",
        customer_id="cust-1",
        account_id="acc-1",
        ts=datetime(2025, 1, 31, 10, 15, tzinfo=UTC),
        amount=Decimal("12.50"),
        currency="EUR",
        direction=Direction.DEBIT,
        channel=Channel.CARD,
        status=TxStatus.POSTED,
        mcc="5411",
        counterparty="Grocer Ltd",
        balance_after=Decimal("-20.00"),
        credit_limit=Decimal("500"),
    )
    assert isinstance(event.amount, Decimal)
    assert event.ts.utcoffset() is not None and event.ts.utcoffset().total_seconds() == 0


def test_valid_repayment_decodes_to_domain_values() -> None:
    """A full repayment decodes to Decimal money, a date, a UTC time and its type enum."""
    event = decode(decode_repayment, _raw(REPAYMENT), None, MAX_BYTES)
    assert event == Repayment(
        event_id="rp-1",
        customer_id="cust-1",
        loan_id="loan-1",
        ts=datetime(2025, 2, 1, 0, 0, 0, 250_000, tzinfo=UTC),
        type=RepaymentType.PAYMENT,
        instalment_no=3,
        due_date=date(2025, 1, 31),
        amount_due=Decimal("250.00"),
        amount_paid=Decimal("100.00"),
        outstanding_principal=Decimal("4750.00"),
    )
    assert event.type is RepaymentType.PAYMENT


def test_optional_transaction_fields_may_be_absent_or_null() -> None:
    """Optional transaction fields default to None whether missing or null."""
    data = {k: v for k, v in TRANSACTION.items() if k not in {"mcc", "counterparty"}}
    data["balance_after"] = None
    data["credit_limit"] = None
    event = decode(decode_transaction, _raw(data), None, MAX_BYTES)
    assert isinstance(event, Transaction)
    assert (event.mcc, event.counterparty, event.balance_after, event.credit_limit) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("minor_units", "expected"),
    [(1250, Decimal("12.50")), (1, Decimal("0.01")), (100_000, Decimal("1000.00"))],
)
def test_integer_amount_is_minor_units(minor_units: int, expected: Decimal) -> None:
    """An integer amount counts minor units (cents), not whole currency units."""
    event = decode(
        decode_transaction, _raw(_with(TRANSACTION, amount=minor_units)), None, MAX_BYTES
    )
    assert isinstance(event, Transaction)
    assert event.amount == expected


def test_repayment_allows_zero_paid_on_a_due_event() -> None:
    """A due event with nothing paid yet is valid: repayment amounts may be zero."""
    data = _with(REPAYMENT, type="due", amount_paid="0")
    event = decode(decode_repayment, _raw(data), None, MAX_BYTES)
    assert isinstance(event, Repayment)
    assert event.amount_paid == 0
    assert event.type is RepaymentType.DUE


def test_key_equal_to_customer_id_is_accepted() -> None:
    """The message key may be the customer_id, or absent."""
    for key in (b"cust-1", None):
        assert decode(decode_transaction, _raw(TRANSACTION), key, MAX_BYTES).customer_id == "cust-1"


# Bad messages: each gives its specific code


@pytest.mark.parametrize("raw", [b"not json", b"{", b"\xff\xfe\x00", b"{'a': 1}"])
def test_non_json_bytes_are_not_json(raw: bytes) -> None:
    """Bytes that are not UTF-8 JSON fail with NOT_JSON."""
    assert _code("transaction", raw) is ErrorCode.NOT_JSON


@pytest.mark.parametrize("raw", [b"", None])
def test_empty_or_missing_value_is_not_json(raw: bytes | None) -> None:
    """An empty value or a tombstone (None) fails with NOT_JSON."""
    assert _code("transaction", raw) is ErrorCode.NOT_JSON


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_json_that_is_not_an_object_is_rejected(raw: bytes) -> None:
    """JSON arrays and scalars fail with NOT_OBJECT."""
    assert _code("transaction", raw) is ErrorCode.NOT_OBJECT


@pytest.mark.parametrize("kind", ["transaction", "repayment"])
@pytest.mark.parametrize("version", [2, 0, True, "1", None, "missing"])
def test_unsupported_schema_version(kind: str, version: Any) -> None:
    """Any schema_version other than the integer 1 (or none at all) is rejected."""
    template = TEMPLATES[kind]
    data = (
        _without(template, "schema_version")
        if version == "missing"
        else _with(template, schema_version=version)
    )
    assert _code(kind, data) is ErrorCode.SCHEMA_VERSION


@pytest.mark.parametrize(
    ("kind", "field"),
    [("transaction", f) for f in TX_REQUIRED] + [("repayment", f) for f in REPAYMENT_REQUIRED],
)
def test_missing_required_field(kind: str, field: str) -> None:
    """Every required field, absent or null, fails with MISSING_FIELD naming it."""
    template = TEMPLATES[kind]
    for data in (_without(template, field), _with(template, **{field: None})):
        with pytest.raises(DecodeError) as info:
            decode(DECODERS[kind], _raw(data), None, MAX_BYTES)
        assert info.value.code is ErrorCode.MISSING_FIELD
        assert field in info.value.message


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("transaction", "amount", 12.5),
        ("transaction", "amount", [1250]),
        ("transaction", "amount", {"units": 12}),
        ("transaction", "amount", True),
        ("transaction", "balance_after", -20.25),
        ("transaction", "event_id", 17),
        ("transaction", "mcc", 5411),
        ("transaction", "direction", 1),
        ("repayment", "instalment_no", "3"),
        ("repayment", "instalment_no", True),
        ("repayment", "instalment_no", 3.0),
        ("repayment", "instalment_no", -1),
        ("repayment", "amount_due", 250.0),
        ("repayment", "ts", 1738368000),
    ],
)
def test_wrong_types_are_rejected(kind: str, field: str, value: Any) -> None:
    """Values of the wrong JSON type (including binary floats for money) fail with WRONG_TYPE."""
    data = _with(TEMPLATES[kind], **{field: value})
    with pytest.raises(DecodeError) as info:
        decode(DECODERS[kind], _raw(data), None, MAX_BYTES)
    assert info.value.code is ErrorCode.WRONG_TYPE
    assert field in info.value.message


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("transaction", "direction", "sideways"),
        ("transaction", "direction", "DEBIT"),
        ("transaction", "channel", "pigeon"),
        ("transaction", "status", "pending"),
        ("repayment", "type", "refund"),
    ],
)
def test_unknown_enum_values(kind: str, field: str, value: str) -> None:
    """A value outside an enum fails with BAD_ENUM naming the field."""
    with pytest.raises(DecodeError) as info:
        decode(DECODERS[kind], _raw(_with(TEMPLATES[kind], **{field: value})), None, MAX_BYTES)
    assert info.value.code is ErrorCode.BAD_ENUM
    assert field in info.value.message


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("transaction", "amount", "-5.00"),
        ("transaction", "amount", -500),
        ("transaction", "amount", "0"),
        ("transaction", "amount", "0.00"),
        ("transaction", "amount", 0),
        ("transaction", "amount", "abc"),
        ("transaction", "amount", ""),
        ("transaction", "amount", "NaN"),
        ("transaction", "amount", "Infinity"),
        ("transaction", "amount", "1e15"),
        ("transaction", "credit_limit", "-1"),
        ("repayment", "amount_due", "-0.01"),
        ("repayment", "amount_paid", -1),
    ],
)
def test_bad_amounts(kind: str, field: str, value: Any) -> None:
    """Negative, zero (for a transaction), non-numeric and non-finite money fail with BAD_AMOUNT."""
    with pytest.raises(DecodeError) as info:
        decode(DECODERS[kind], _raw(_with(TEMPLATES[kind], **{field: value})), None, MAX_BYTES)
    assert info.value.code is ErrorCode.BAD_AMOUNT
    assert field in info.value.message


@pytest.mark.parametrize("value", ["1e1000000", "-1e999999999"])
def test_amount_beyond_decimal_exponent_range_is_a_decode_error(value: str) -> None:
    """A money string whose exponent overflows the decimal context is a BAD_AMOUNT, not a crash."""
    assert _code("transaction", _with(TRANSACTION, amount=value)) is ErrorCode.BAD_AMOUNT


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("2025-01-31T10:15:00+02:00", ErrorCode.NON_UTC_TIME),
        ("2025-01-31T10:15:00-05:00", ErrorCode.NON_UTC_TIME),
        ("2025-01-31T10:15:00", ErrorCode.BAD_TIME),
        ("2025-01-31", ErrorCode.BAD_TIME),
        ("yesterday", ErrorCode.BAD_TIME),
        ("2025-02-30T10:15:00Z", ErrorCode.BAD_TIME),
        ("", ErrorCode.BAD_TIME),
    ],
)
def test_bad_times(value: str, code: ErrorCode) -> None:
    """Times must be RFC 3339 with a date, a time and the UTC zone."""
    with pytest.raises(DecodeError) as info:
        decode(decode_transaction, _raw(_with(TRANSACTION, ts=value)), None, MAX_BYTES)
    assert info.value.code is code
    assert "ts" in info.value.message


@pytest.mark.parametrize("value", ["2025-01-31T10:15:00Z", "2025-01-31T10:15:00+00:00"])
def test_utc_spellings_are_accepted(value: str) -> None:
    """Both Z and +00:00 denote UTC."""
    event = decode(decode_transaction, _raw(_with(TRANSACTION, ts=value)), None, MAX_BYTES)
    assert event.ts == datetime(2025, 1, 31, 10, 15, tzinfo=UTC)


@pytest.mark.parametrize("value", ["31/01/2025", "2025-13-01", "tomorrow"])
def test_bad_due_date(value: str) -> None:
    """A due_date that is not YYYY-MM-DD fails with BAD_TIME naming due_date."""
    with pytest.raises(DecodeError) as info:
        decode(decode_repayment, _raw(_with(REPAYMENT, due_date=value)), None, MAX_BYTES)
    assert info.value.code is ErrorCode.BAD_TIME
    assert "due_date" in info.value.message


def test_oversized_message() -> None:
    """A message larger than max_bytes fails with OVERSIZED before it is parsed."""
    raw = _raw(_with(TRANSACTION, counterparty="x" * 2000))
    with pytest.raises(DecodeError) as info:
        decode(decode_transaction, raw, None, max_bytes=1024)
    assert info.value.code is ErrorCode.OVERSIZED
    assert decode(decode_transaction, raw, None, max_bytes=len(raw)).event_id == "tx-1"


@pytest.mark.parametrize("key", [b"cust-2", b"", b"CUST-1", b"cust-1 "])
def test_key_mismatch(key: bytes) -> None:
    """A message key that is not the customer_id fails with KEY_MISMATCH."""
    assert _code("transaction", TRANSACTION, key=key) is ErrorCode.KEY_MISMATCH


@pytest.mark.parametrize("kind", ["transaction", "repayment"])
@pytest.mark.parametrize("field", ["event_id", "customer_id"])
@pytest.mark.parametrize("value", ["", "x" * 200, "x" * (MAX_ID_LENGTH + 1), "a\nb", "tab\there"])
def test_bad_ids(kind: str, field: str, value: str) -> None:
    """Ids must be 1..128 printable characters."""
    with pytest.raises(DecodeError) as info:
        decode(DECODERS[kind], _raw(_with(TEMPLATES[kind], **{field: value})), None, MAX_BYTES)
    assert info.value.code is ErrorCode.BAD_ID
    assert field in info.value.message


def test_id_of_max_length_is_accepted() -> None:
    """An id of exactly 128 characters is valid."""
    data = _with(TRANSACTION, event_id="e" * MAX_ID_LENGTH)
    assert decode(decode_transaction, _raw(data), None, MAX_BYTES).event_id == "e" * MAX_ID_LENGTH


@pytest.mark.parametrize("value", ["eur", "EURO", "EU", "E1R", "", "US$"])
def test_bad_currency(value: str) -> None:
    """A currency that is not three upper-case letters fails with BAD_ID naming currency."""
    with pytest.raises(DecodeError) as info:
        decode(decode_transaction, _raw(_with(TRANSACTION, currency=value)), None, MAX_BYTES)
    assert info.value.code is ErrorCode.BAD_ID
    assert "currency" in info.value.message


@pytest.mark.parametrize("value", ["\u00c5\u00c4\u00d6", "\u0395\u03a5\u03a1"])
def test_non_ascii_currency_is_rejected(value: str) -> None:
    """ISO 4217 codes are three ASCII letters A-Z; other alphabets are not currencies."""
    assert _code("transaction", _with(TRANSACTION, currency=value)) is ErrorCode.BAD_ID


def test_parse_object_checks_size_before_json() -> None:
    """parse_object reports OVERSIZED even for bytes that are not JSON."""
    with pytest.raises(DecodeError) as info:
        parse_object(b"x" * 100, max_bytes=10)
    assert info.value.code is ErrorCode.OVERSIZED


def test_decode_error_is_a_value_error_with_code_in_text() -> None:
    """DecodeError is a ValueError whose text starts with the stable code."""
    with pytest.raises(ValueError, match=r"^not_object: "):
        parse_object(b"[]", MAX_BYTES)


# Dead letters


def test_dead_letter_keeps_original_bytes_and_reason() -> None:
    """A dead letter holds the exact bytes (base64), source, code and an RFC 3339 Z time."""
    raw = b'\xff\x00{"schema_version": 1, broken'
    key = b"\x01cust"
    with pytest.raises(DecodeError) as info:
        decode(decode_transaction, raw, key, MAX_BYTES)
    first_seen = datetime(2025, 1, 31, 10, 15, 0, 123_000, tzinfo=UTC)
    record = orjson.loads(
        dead_letter(raw, key, Source("ews.transactions", 3, 42), info.value, first_seen)
    )
    assert base64.b64decode(record["payload_b64"]) == raw
    assert base64.b64decode(record["key_b64"]) == key
    assert (record["topic"], record["partition"], record["offset"]) == ("ews.transactions", 3, 42)
    assert record["error_code"] == "not_json"
    assert record["error_message"] == info.value.message
    assert record["first_seen"] == "2025-01-31T10:15:00.123Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", record["first_seen"])
    assert datetime.fromisoformat(record["first_seen"]) == first_seen


def test_dead_letter_keeps_at_most_max_bytes_of_payload_and_key() -> None:
    """A message too large to dead-letter whole keeps its first bytes, its length and a flag."""
    error = DecodeError(ErrorCode.OVERSIZED, "too large")
    at = datetime(2025, 1, 1, tzinfo=UTC)
    record = orjson.loads(dead_letter(b"x" * 100, b"k" * 50, Source("t", 0, 0), error, at, 10))
    assert base64.b64decode(record["payload_b64"]) == b"x" * 10
    assert base64.b64decode(record["key_b64"]) == b"k" * 10
    assert (record["payload_bytes"], record["payload_truncated"]) == (100, True)
    whole = orjson.loads(dead_letter(b"x" * 10, None, Source("t", 0, 0), error, at, 10))
    assert (whole["payload_bytes"], whole["payload_truncated"]) == (10, False)


def test_dead_letter_without_key() -> None:
    """A keyless message dead-letters with a null key."""
    error = DecodeError(ErrorCode.NOT_OBJECT, "expected a JSON object, got list")
    record = orjson.loads(
        dead_letter(b"[]", None, Source("t", 0, 0), error, datetime(2025, 1, 1, tzinfo=UTC))
    )
    assert record["key_b64"] is None
    assert record["error_code"] == "not_object"
    assert record["first_seen"] == "2025-01-01T00:00:00.000Z"


@FAST
@given(raw=st.binary(max_size=300), key=st.none() | st.binary(max_size=20))
def test_dead_letter_round_trips_any_bytes(raw: bytes, key: bytes | None) -> None:
    """Whatever the payload bytes, the dead letter decodes back to exactly them."""
    error = DecodeError(ErrorCode.NOT_JSON, "x")
    record = orjson.loads(
        dead_letter(raw, key, Source("t", 1, 2), error, datetime(2025, 1, 1, tzinfo=UTC))
    )
    assert base64.b64decode(record["payload_b64"]) == raw
    assert (None if record["key_b64"] is None else base64.b64decode(record["key_b64"])) == key


# Properties


@FAST
@given(
    raw=st.binary(max_size=400)
    | st.builds(
        lambda d: orjson.dumps(d),
        st.dictionaries(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1)),
    ),
    key=st.none() | st.binary(max_size=16),
    kind=st.sampled_from(sorted(DECODERS)),
)
def test_arbitrary_bytes_only_raise_decode_error(raw: bytes, key: bytes | None, kind: str) -> None:
    """No byte string makes decode raise anything but DecodeError."""
    try:
        decode(DECODERS[kind], raw, key, 256)
    except DecodeError as exc:
        assert isinstance(exc.code, ErrorCode)


_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
# Money-like strings stay within the decimal context's exponent range: the overflow case is
# covered by test_amount_beyond_decimal_exponent_range_is_a_decode_error.
_MONEY = (
    st.decimals(min_value=Decimal("-1e16"), max_value=Decimal("1e16")).map(str)
    | st.sampled_from(["NaN", "-Infinity", "1e5", "1E-5", " 12.5 ", "1_000", "0x10", "-0"])
    | st.integers(min_value=-(10**18), max_value=10**18)
)
_TIMES = (
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    | st.datetimes().map(lambda d: d.isoformat())
    | st.dates().map(lambda d: d.isoformat())
    | st.sampled_from(["2025-01-31T10:15:00+02:00", "2025-W05-5T10:00:00Z", "T", "Z", "24:00"])
)
_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "schema_version": st.sampled_from([1, 1, 1, 2, True, "1", None, 1.0]),
    "event_id": st.text(max_size=140) | _JSON,
    "customer_id": st.just("cust-1") | st.text(max_size=140) | _JSON,
    "account_id": st.text(max_size=10) | _JSON,
    "loan_id": st.text(max_size=10) | _JSON,
    "ts": _TIMES | _JSON,
    "due_date": _TIMES | _JSON,
    "amount": _MONEY | _JSON,
    "amount_due": _MONEY | _JSON,
    "amount_paid": _MONEY | _JSON,
    "balance_after": _MONEY | _JSON,
    "credit_limit": _MONEY | _JSON,
    "outstanding_principal": _MONEY | _JSON,
    "currency": st.sampled_from(["EUR", "usd", "GBP", "XX"]) | _JSON,
    "direction": st.sampled_from([*Direction, "up"]) | _JSON,
    "channel": st.sampled_from([*Channel, "fax"]) | _JSON,
    "status": st.sampled_from([*TxStatus, "void"]) | _JSON,
    "type": st.sampled_from([*RepaymentType, "gift"]) | _JSON,
    "instalment_no": st.integers(min_value=-5, max_value=2**40) | _JSON,
    "mcc": st.text(max_size=4) | _JSON,
    "counterparty": st.text(max_size=10) | _JSON,
}


@st.composite
def _messy_dicts(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, values in _FIELD_VALUES.items():
        if draw(st.integers(0, 9)) < 8:  # mostly present, sometimes missing
            data[name] = draw(values)
    data.update(draw(st.dictionaries(st.text(max_size=6), _JSON, max_size=2)))
    return data


@settings(
    max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=_messy_dicts(), kind=st.sampled_from(sorted(DECODERS)), keyed=st.booleans())
def test_arbitrary_json_objects_only_raise_decode_error(
    data: dict[str, Any], kind: str, keyed: bool
) -> None:
    """No JSON object, valid or not, makes decode raise anything but DecodeError."""
    try:
        event = decode(DECODERS[kind], orjson.dumps(data), b"cust-1" if keyed else None, MAX_BYTES)
    except DecodeError as exc:
        assert isinstance(exc.code, ErrorCode)
    else:
        assert event.ts.utcoffset() is not None and event.ts.utcoffset().total_seconds() == 0
        assert not keyed or event.customer_id == "cust-1"


_CHECKED = {"transaction": records._checked_transaction, "repayment": records._checked_repayment}
_FAST = {"transaction": records._fast_transaction, "repayment": records._fast_repayment}


_EDGES: tuple[Any, ...] = (None, 0, -1, 1, "0", "0.00", "-0.01", "", " ", "x\n", True, 1.5, [])


def _same_or_declined(kind: str, message: dict[str, Any]) -> None:
    fast = _FAST[kind](message)
    try:
        checked = _CHECKED[kind](message)
    except DecodeError:
        assert fast is None, message
    else:
        assert fast is None or fast == checked, message


@pytest.mark.parametrize("kind", sorted(DECODERS))
def test_the_fast_decoder_agrees_on_every_field_at_every_edge(kind: str) -> None:
    """The fast path may decline a good message (the checked one then decides), never accept a
    bad one, and what it accepts decodes to the very same event: each field of a valid message
    set to each edge value in turn."""
    for name in sorted({*TEMPLATES[kind], *_FIELD_VALUES}):
        for value in _EDGES:
            _same_or_declined(kind, {**TEMPLATES[kind], name: value})


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(kind=st.sampled_from(sorted(DECODERS)), messy=st.booleans(), data=st.data())
def test_the_fast_decoder_agrees_on_arbitrary_objects(
    kind: str, messy: bool, data: st.DataObject
) -> None:
    """The same on a valid message with one field drawn from any value of its kind, or on a
    messy object."""
    if messy:
        message = data.draw(_messy_dicts())
    else:
        name = data.draw(st.sampled_from(sorted(_FIELD_VALUES)))
        message = {**TEMPLATES[kind], name: data.draw(_FIELD_VALUES[name])}
    _same_or_declined(kind, message)


def test_the_fast_decoder_takes_the_usual_messages() -> None:
    """Not a speed test: the messages the simulator writes do not fall back."""
    assert records._fast_transaction(orjson.loads(_raw(TRANSACTION))) is not None
    assert records._fast_repayment(orjson.loads(_raw(REPAYMENT))) is not None


_IDS = st.text(
    alphabet=st.characters(whitelist_categories=("L", "N", "P", "S")) | st.just(" "),
    min_size=1,
    max_size=MAX_ID_LENGTH,
)
_UTC_TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def _money_wire(
    minimum: Decimal,
) -> st.SearchStrategy[tuple[str | int, Decimal]]:
    """(wire value, expected Decimal): a decimal string or integer minor units."""
    as_string = st.decimals(min_value=minimum, max_value=Decimal("999999999999.99"), places=2).map(
        lambda d: (str(d), d)
    )
    as_minor = st.integers(min_value=int(minimum * 100), max_value=10**14).map(
        lambda n: (n, Decimal(n) / 100)
    )
    return as_string | as_minor


def _time_wire(ts: datetime, zulu: bool) -> str:
    text = ts.isoformat()
    return text.replace("+00:00", "Z") if zulu else text


@FAST
@given(
    event_id=_IDS,
    customer_id=_IDS,
    account_id=_IDS,
    ts=_UTC_TIMES,
    zulu=st.booleans(),
    amount=_money_wire(Decimal("0.01")),
    currency=st.text(alphabet=string.ascii_uppercase, min_size=3, max_size=3),
    direction=st.sampled_from(Direction),
    channel=st.sampled_from(Channel),
    status=st.sampled_from(TxStatus),
    mcc=st.none() | st.text(max_size=4),
    balance_after=st.none() | _money_wire(Decimal("-1000000")),
)
def test_valid_transactions_round_trip(
    event_id: str,
    customer_id: str,
    account_id: str,
    ts: datetime,
    zulu: bool,
    amount: tuple[str | int, Decimal],
    currency: str,
    direction: Direction,
    channel: Channel,
    status: TxStatus,
    mcc: str | None,
    balance_after: tuple[str | int, Decimal] | None,
) -> None:
    """Any valid generated transaction decodes to exactly the values it was built from."""
    data = {
        "schema_version": 1,
        "event_id": event_id,
        "customer_id": customer_id,
        "account_id": account_id,
        "ts": _time_wire(ts, zulu),
        "amount": amount[0],
        "currency": currency,
        "direction": direction.value,
        "channel": channel.value,
        "status": status.value,
        "mcc": mcc,
        "balance_after": None if balance_after is None else balance_after[0],
    }
    event = decode(decode_transaction, orjson.dumps(data), customer_id.encode(), MAX_BYTES)
    assert isinstance(event, Transaction)
    assert (event.event_id, event.customer_id, event.account_id) == (
        event_id,
        customer_id,
        account_id,
    )
    assert event.ts == ts and event.ts.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert event.amount == amount[1] and isinstance(event.amount, Decimal)
    assert (event.currency, event.direction, event.channel, event.status) == (
        currency,
        direction,
        channel,
        status,
    )
    assert event.mcc == mcc
    assert event.balance_after == (None if balance_after is None else balance_after[1])


@FAST
@given(
    event_id=_IDS,
    customer_id=_IDS,
    loan_id=_IDS,
    ts=_UTC_TIMES,
    zulu=st.booleans(),
    type_=st.sampled_from(RepaymentType),
    instalment_no=st.integers(min_value=0, max_value=10**6),
    due_date=st.dates(min_value=date(1970, 1, 1), max_value=date(2100, 1, 1)),
    amount_due=_money_wire(Decimal("0")),
    amount_paid=_money_wire(Decimal("0")),
    outstanding=st.none() | _money_wire(Decimal("0")),
)
def test_valid_repayments_round_trip(
    event_id: str,
    customer_id: str,
    loan_id: str,
    ts: datetime,
    zulu: bool,
    type_: RepaymentType,
    instalment_no: int,
    due_date: date,
    amount_due: tuple[str | int, Decimal],
    amount_paid: tuple[str | int, Decimal],
    outstanding: tuple[str | int, Decimal] | None,
) -> None:
    """Any valid generated repayment decodes to exactly the values it was built from."""
    data = {
        "schema_version": 1,
        "event_id": event_id,
        "customer_id": customer_id,
        "loan_id": loan_id,
        "ts": _time_wire(ts, zulu),
        "type": type_.value,
        "instalment_no": instalment_no,
        "due_date": due_date.isoformat(),
        "amount_due": amount_due[0],
        "amount_paid": amount_paid[0],
    }
    if outstanding is not None:
        data["outstanding_principal"] = outstanding[0]
    event = decode(decode_repayment, orjson.dumps(data), None, MAX_BYTES)
    assert event == Repayment(
        event_id=event_id,
        customer_id=customer_id,
        loan_id=loan_id,
        ts=ts,
        type=type_,
        instalment_no=instalment_no,
        due_date=due_date,
        amount_due=amount_due[1],
        amount_paid=amount_paid[1],
        outstanding_principal=None if outstanding is None else outstanding[1],
    )


def test_event_time_after_the_reading_clock_is_refused() -> None:
    """One mistyped year must not age a whole partition: times past ``latest`` are refused."""
    read_at = datetime(2025, 6, 1, tzinfo=UTC)
    data = {**TRANSACTION, "ts": "2099-06-01T00:00:00Z"}
    with pytest.raises(DecodeError) as info:
        decode(decode_transaction, _raw(data), None, MAX_BYTES, not_after(read_at))
    assert info.value.code is ErrorCode.FUTURE_TIME
    assert "2099-06-01" in info.value.message
    near = {**TRANSACTION, "ts": "2025-06-01T23:00:00Z"}  # within the allowed skew
    assert decode(decode_transaction, _raw(near), None, MAX_BYTES, not_after(read_at))
