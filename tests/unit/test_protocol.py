from __future__ import annotations

import gzip
import json
import stat
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.keys import (
    KeyFileError,
    generate_private_key,
    load_or_create_private_key,
    load_private_key,
    load_public_key_b64,
    public_key_b64,
    write_private_key,
)
from sync.protocol import (
    ERR_BAD_SIGNATURE,
    ERR_BATCH_TOO_LARGE,
    ERR_STALE,
    ERR_UNSIGNED,
    PROTOCOL_VERSION,
    FeedChange,
    ProtocolError,
    PullPage,
    PushResult,
    QuarantineNotice,
    WireEvent,
    accepted_versions,
    canonical_json,
    cloud_compatible,
    decode_batch,
    encode_batch,
    parse_version,
    request_target,
)
from sync.signing import (
    H_SIGNATURE,
    H_STORE,
    H_TIMESTAMP,
    SignatureError,
    check_fresh,
    parse_signed_headers,
    sign_request,
    sign_response,
    verify_request,
    verify_response,
)

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
KEY = generate_private_key()
OTHER = generate_private_key()


def _event(seq: int, **kw: object) -> WireEvent:
    fields: dict[str, object] = {
        "seq": seq,
        "id": f"e-{seq:04d}-0000000000",
        "type": "sale.completed",
        "aggregate_id": f"sale-{seq}",
        "payload": {"n": seq, "name": "东北大米"},
        "created_at": NOW.isoformat(),
    }
    fields.update(kw)
    return WireEvent(**fields)  # type: ignore[arg-type]


def _signed(body: bytes = b"{}", **kw: object) -> dict[str, str]:
    args: dict[str, object] = {
        "method": "POST",
        "target": "/api/v1/sync/push",
        "store_id": "S001",
        "body": body,
        "now": NOW,
    }
    args.update(kw)
    return sign_request(KEY, **args)  # type: ignore[arg-type]


def _verify(headers: dict[str, str], body: bytes = b"{}", key=KEY, **kw: object) -> None:
    signed = parse_signed_headers(headers)
    args: dict[str, object] = {"method": "POST", "target": "/api/v1/sync/push", "body": body}
    args.update(kw)
    verify_request(key.public_key(), signed, **args)  # type: ignore[arg-type]


# --- versions and canonical JSON ----------------------------------------------------------------


def test_cloud_accepts_current_and_previous_version_only():
    assert accepted_versions(3) == {2, 3}
    assert accepted_versions(1) == {1}
    assert PROTOCOL_VERSION in accepted_versions()
    assert cloud_compatible([2, 3], 2)
    assert not cloud_compatible([2, 3], 1)
    assert parse_version("2") == 2
    assert parse_version("two") is None
    assert parse_version(None) is None


def test_canonical_json_is_stable_and_refuses_nan():
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_request_target_sorts_parameters_and_drops_none():
    assert request_target("/p") == "/p"
    assert request_target("/p", {"z": 1, "a": "x y", "n": None}) == "/p?a=x+y&z=1"


# --- batches ------------------------------------------------------------------------------------


def test_batch_round_trip_sorts_by_seq():
    body = encode_batch("S001", [_event(2), _event(1)], batch_id="b1")
    batch = decode_batch(body)
    assert batch.store_id == "S001"
    assert [e.seq for e in batch.events] == [1, 2]
    assert batch.events[0].payload == {"n": 1, "name": "东北大米"}
    # Deterministic bytes: the same batch always compresses to the same body.
    assert body == encode_batch("S001", [_event(2), _event(1)], batch_id="b1")


def _gz(raw: bytes) -> bytes:
    """Gzip with no timestamp: the bytes name the test cases, and two pytest-xdist workers
    collecting them in different seconds must name them alike."""
    return gzip.compress(raw, mtime=0)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not gzip", "not gzip"),
        (_gz(b"[1,2"), "not JSON"),
        (_gz(b"[]"), "JSON object"),
        (_gz(b'{"store_id":"S1","batch_id":"b","events":{}}'), "must be a list"),
        (_gz(b'{"batch_id":"b","events":[]}'), "store_id"),
        (_gz(b'{"store_id":"S1","batch_id":"b","events":[{"seq":0,"id":"x"}]}'), "seq"),
        (
            _gz(b'{"store_id":"S1","batch_id":"b","events":[{"seq":true,"id":"x"}]}'),
            "seq",
        ),
        (_gz(b'{"store_id":"S1","batch_id":"b","events":[{"seq":1}]}'), "id"),
        (_gz(b"{}")[:-4], "truncated"),
    ],
)
def test_malformed_batches_are_refused(body, problem):
    with pytest.raises(ProtocolError, match=problem) as info:
        decode_batch(body)
    assert info.value.code == "bad_batch"


def test_repeated_seq_or_id_in_a_batch_is_refused():
    doc = {"store_id": "S1", "batch_id": "b", "events": [_event(1).to_dict(), _event(1).to_dict()]}
    with pytest.raises(ProtocolError, match="twice"):
        decode_batch(gzip.compress(json.dumps(doc).encode()))
    doc["events"] = [_event(1).to_dict(), _event(2, id=_event(1).id).to_dict()]
    with pytest.raises(ProtocolError, match="twice"):
        decode_batch(gzip.compress(json.dumps(doc).encode()))


def test_batch_bounds_events_bytes_and_inflation():
    with pytest.raises(ProtocolError) as info:
        encode_batch("S1", [_event(i) for i in range(1, 12)], batch_id="b", max_events=10)
    assert info.value.code == ERR_BATCH_TOO_LARGE
    body = encode_batch("S1", [_event(i) for i in range(1, 12)], batch_id="b")
    with pytest.raises(ProtocolError) as info:
        decode_batch(body, max_events=10)
    assert info.value.code == ERR_BATCH_TOO_LARGE
    with pytest.raises(ProtocolError) as info:
        decode_batch(body, max_bytes=len(body) - 1)
    assert info.value.code == ERR_BATCH_TOO_LARGE
    bomb = gzip.compress(b" " * 5_000_000 + b"{}")
    with pytest.raises(ProtocolError) as info:
        decode_batch(bomb, max_json_bytes=1_000_000)
    assert info.value.code == ERR_BATCH_TOO_LARGE


def test_answers_round_trip_through_json():
    result = PushResult(
        acked_seq=7,
        resume_from=8,
        applied=3,
        duplicates=1,
        quarantined=(QuarantineNotice(6, "e6", "x.y", "unknown event type"),),
        gap_at=None,
        server_time=NOW.isoformat(),
        clock_skew_s=-1.5,
    )
    assert PushResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    page = PullPage("catalog", (FeedChange("MILK", {"sku": "MILK"}),), "c2", True, snapshot=True)
    assert PullPage.from_dict(json.loads(json.dumps(page.to_dict()))) == page
    with pytest.raises(ProtocolError):
        PushResult.from_dict({"acked_seq": 1})
    with pytest.raises(ProtocolError):
        PullPage.from_dict({"feed": "catalog"})


# --- request signatures -------------------------------------------------------------------------


def test_a_signed_request_verifies():
    headers = _signed(b'{"a":1}')
    _verify(headers, b'{"a":1}')
    assert check_fresh(parse_signed_headers(headers), now=NOW + timedelta(seconds=30), window_s=300)


@pytest.mark.parametrize(
    "change",
    [
        {"body": b'{"a":2}'},
        {"method": "GET"},
        {"target": "/api/v1/sync/push?x=1"},
        {"key": OTHER},
    ],
    ids=["tampered body", "other method", "other target", "wrong key"],
)
def test_any_change_breaks_the_signature(change):
    headers = _signed(b'{"a":1}')
    body = change.pop("body", b'{"a":1}')
    with pytest.raises(SignatureError) as info:
        _verify(headers, body, **change)
    assert info.value.code == ERR_BAD_SIGNATURE


def test_claiming_another_store_or_version_breaks_the_signature():
    for header, value in ((H_STORE, "S002"), ("X-Aisle-Protocol", "9"), (H_TIMESTAMP, "1")):
        headers = _signed()
        headers[header] = value
        with pytest.raises(SignatureError) as info:
            _verify(headers)
        assert info.value.code == ERR_BAD_SIGNATURE


def test_stale_timestamps_fail_either_way_and_report_the_skew():
    signed = parse_signed_headers(_signed())
    for offset in (-301, 301, 3 * 86400):
        with pytest.raises(SignatureError) as info:
            check_fresh(signed, now=NOW + timedelta(seconds=offset), window_s=300)
        assert info.value.code == ERR_STALE
        assert info.value.details["skew_s"] == pytest.approx(-offset)


def test_missing_or_malformed_headers_mean_unsigned():
    for name in (H_STORE, H_SIGNATURE, "X-Aisle-Nonce"):
        headers = _signed()
        del headers[name]
        with pytest.raises(SignatureError) as info:
            parse_signed_headers(headers)
        assert info.value.code == ERR_UNSIGNED
    headers = _signed()
    headers["X-Aisle-Nonce"] = "short"
    with pytest.raises(SignatureError):
        parse_signed_headers(headers)
    headers = _signed()
    headers[H_SIGNATURE] = "%%%"
    with pytest.raises(SignatureError) as info:
        parse_signed_headers(headers)
    assert info.value.code == ERR_BAD_SIGNATURE


def test_headers_are_read_case_insensitively():
    headers = {k.lower(): v for k, v in _signed().items()}
    assert parse_signed_headers(headers).store_id == "S001"


def test_line_breaks_cannot_smuggle_fields():
    with pytest.raises(ValueError):
        _signed(target="/a\nS002")


# --- answer signatures --------------------------------------------------------------------------


def test_answers_verify_only_for_their_request():
    body = b'{"feed":"catalog"}'
    headers = sign_response(KEY, request_nonce="n" * 22, status=200, body=body, now=NOW)
    verify_response(
        KEY.public_key(), request_nonce="n" * 22, status=200, body=body, headers=headers
    )
    bad = [
        {"request_nonce": "m" * 22},
        {"status": 409},
        {"body": b'{"feed":"prices"}'},
        {"key": OTHER},
        {"headers": {}},
    ]
    for change in bad:
        args = {
            "request_nonce": "n" * 22,
            "status": 200,
            "body": body,
            "headers": headers,
        }
        key = change.pop("key", KEY)
        args.update(change)
        with pytest.raises(SignatureError):
            verify_response(key.public_key(), **args)  # type: ignore[arg-type]


# --- key files ----------------------------------------------------------------------------------


def test_private_key_file_is_0600_and_never_overwritten(tmp_path):
    path = tmp_path / "keys" / "store.pem"
    write_private_key(path, KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_b64(load_private_key(path)) == public_key_b64(KEY)
    with pytest.raises(KeyFileError, match="exists"):
        write_private_key(path, OTHER)
    assert public_key_b64(load_or_create_private_key(path)) == public_key_b64(KEY)
    assert list(path.parent.iterdir()) == [path]


def test_loose_or_foreign_key_files_are_refused(tmp_path):
    path = tmp_path / "k.pem"
    write_private_key(path, KEY)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="mode"):
        load_private_key(path)
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a key")
    junk.chmod(0o600)
    with pytest.raises(KeyFileError):
        load_private_key(junk)
    with pytest.raises(KeyFileError):
        load_private_key(tmp_path / "missing.pem")


def test_public_keys_travel_as_base64_raw():
    text = public_key_b64(KEY)
    assert len(text) == 44
    public = load_public_key_b64(text)
    assert public_key_b64(public) == text
    for bad in ("", "abc", "QUJD", "%%"):
        with pytest.raises(ValueError):
            load_public_key_b64(bad)


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "type": st.text(min_size=1, max_size=20),
                "aggregate_id": st.text(max_size=40),
                "payload": st.dictionaries(
                    st.text(max_size=8),
                    st.one_of(st.integers(), st.text(max_size=12), st.booleans(), st.none()),
                    max_size=5,
                ),
            }
        ),
        min_size=1,
        max_size=8,
    ),
    st.one_of(st.none(), st.floats(min_value=0, max_value=4e9)),
)
def test_a_batch_built_from_stored_rows_is_byte_for_byte_the_canonical_one(events, edge_clock):
    from sync.protocol import StoredEvent, encode_stored_batch

    wire = [
        {
            "seq": n,
            "id": f"id-{n}",
            "type": e["type"],
            "aggregate_id": e["aggregate_id"],
            "payload": e["payload"],
            "created_at": "2026-11-26T08:00:00.000001+00:00",
        }
        for n, e in enumerate(events, start=1)
    ]
    stored = [
        StoredEvent(
            w["seq"],
            w["id"],
            w["type"],
            w["aggregate_id"],
            canonical_json(w["payload"]).decode(),
            w["created_at"],
        )
        for w in wire
    ]
    assert encode_stored_batch(
        "S001", stored, batch_id="b-1", edge_clock=edge_clock
    ) == encode_batch("S001", wire, batch_id="b-1", edge_clock=edge_clock)
