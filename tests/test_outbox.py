"""The outbox's storage on PostgreSQL and SQLite: enqueue once per key, claim, lease, backoff, cancel, the log."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from dashboard.storage import outbox
from dashboard.storage.models import outbox as outbox_table

NOW = 1_800_000_000_000
RETRY = {"max_attempts": 3, "base_ms": 1_000, "cap_ms": 60_000}


def put(conn, key: str, channel: str = "webhook", **kw) -> bool:
    return outbox.enqueue(conn, key=key, channel=channel, address=kw.pop("address", "http://x/hook"),
                          subject="s", body="b", payload={"k": key, "说": "中文"}, now_ms=kw.pop("now_ms", NOW), **kw)


def test_enqueue_is_insert_if_absent_by_key_and_keeps_the_payload(any_engine):
    with any_engine.begin() as conn:
        assert put(conn, "alert:1:firing:webhook:http://x/hook") is True
        assert put(conn, "alert:1:firing:webhook:http://x/hook") is False
        assert put(conn, "alert:1:firing:email:a@b") is True
    with any_engine.connect() as conn:
        rows = outbox.list_messages(conn)
        assert [r["key"] for r in rows] == ["alert:1:firing:email:a@b", "alert:1:firing:webhook:http://x/hook"]
        assert rows[1]["status"] == "pending" and rows[1]["attempts"] == 0 and rows[1]["due_ms"] == NOW
        assert '"说": "中文"' in rows[1]["payload"]


def test_a_rolled_back_transaction_leaves_no_message(any_engine):
    with pytest.raises(RuntimeError):
        with any_engine.begin() as conn:
            put(conn, "alert:2:firing:sms:+86")
            raise RuntimeError("the alert's change failed")
    with any_engine.connect() as conn:
        assert outbox.get(conn, "alert:2:firing:sms:+86") is None


def test_an_unknown_channel_is_refused(any_engine):
    with any_engine.begin() as conn, pytest.raises(ValueError):
        put(conn, "k", channel="pigeon")


def many(key: str, channel: str = "webhook", **kw) -> dict:
    return {"key": key, "channel": channel, "address": "http://x/hook", "subject": "s", "body": "b",
            "payload": {"k": key, "说": "中文"}, **kw}


def test_enqueue_many_adds_in_one_call_what_enqueue_would_add_one_by_one(any_engine):
    with any_engine.begin() as conn:
        assert put(conn, "esc:alert:1:1:0:webhook:0") is True
        made = outbox.enqueue_many(conn, [many("esc:alert:1:1:0:webhook:0"),  # already there: kept as it was
                                          many("esc:alert:1:2:0:sms:0", "sms", due_ms=NOW + 600_000),
                                          many("esc:alert:1:2:0:sms:0", "sms", due_ms=NOW + 1),  # first one wins
                                          many("esc:alert:1:3:0:email:0", "email", payload='{"raw": 1}')],
                                   now_ms=NOW)
        assert made == 2
        assert outbox.enqueue_many(conn, [many("esc:alert:1:2:0:sms:0", "sms")], now_ms=NOW) == 0
    with any_engine.connect() as conn:
        rows = {r["key"]: r for r in outbox.list_messages(conn)}
    assert set(rows) == {"esc:alert:1:1:0:webhook:0", "esc:alert:1:2:0:sms:0", "esc:alert:1:3:0:email:0"}
    assert rows["esc:alert:1:2:0:sms:0"]["due_ms"] == NOW + 600_000
    assert rows["esc:alert:1:3:0:email:0"]["due_ms"] == NOW and rows["esc:alert:1:3:0:email:0"]["payload"] == '{"raw": 1}'
    assert all(r["status"] == "pending" and r["attempts"] == 0 and r["created_ms"] == NOW for r in rows.values())
    assert '"说": "中文"' in rows["esc:alert:1:2:0:sms:0"]["payload"]


def test_enqueue_many_refuses_an_unknown_channel_and_adds_nothing(any_engine):
    with any_engine.begin() as conn, pytest.raises(ValueError):
        outbox.enqueue_many(conn, [many("a"), many("b", "pigeon")], now_ms=NOW)
    with any_engine.connect() as conn:
        assert outbox.list_messages(conn) == []


def test_claim_takes_due_rows_once_then_backoff_then_failed(any_engine):
    with any_engine.begin() as conn:
        put(conn, "a")
        put(conn, "later", due_ms=NOW + 10_000)
    with any_engine.begin() as conn:
        taken = outbox.claim_due(conn, now_ms=NOW, lease_ms=30_000)
        assert [r["key"] for r in taken] == ["a"] and taken[0]["status"] == "sending" and taken[0]["attempts"] == 1
        assert outbox.claim_due(conn, now_ms=NOW, lease_ms=30_000) == []  # taken: not again within its lease
    row = taken[0]
    with any_engine.begin() as conn:
        assert outbox.mark_failed(conn, row["id"], attempts=1, error="HTTP 503", now_ms=NOW, **RETRY) == "pending"
    with any_engine.connect() as conn:
        assert outbox.get(conn, "a")["due_ms"] == NOW + 1_000  # the first backoff
        assert outbox.claim_due(conn, now_ms=NOW + 999, lease_ms=30_000) == []
    with any_engine.begin() as conn:
        taken = outbox.claim_due(conn, now_ms=NOW + 1_000, lease_ms=30_000)
        assert [r["attempts"] for r in taken] == [2]
        assert outbox.mark_failed(conn, row["id"], attempts=2, error="HTTP 503", now_ms=NOW + 1_000,
                                  **RETRY) == "pending"
        assert outbox.get(conn, "a")["due_ms"] == NOW + 3_000  # doubled
        taken = outbox.claim_due(conn, now_ms=NOW + 3_000, lease_ms=30_000)
        assert [r["key"] for r in taken] == ["a"]
        assert outbox.mark_failed(conn, row["id"], attempts=3, error="HTTP 500 " + "x" * 5000, now_ms=NOW + 3_000,
                                  **RETRY) == "failed"
    with any_engine.connect() as conn:
        got = outbox.get(conn, "a")
        assert got["status"] == "failed" and got["last_error"].startswith("HTTP 500")
        assert len(got["last_error"]) == outbox.DETAIL_MAX
        log = outbox.attempts_of(conn, [row["id"]])[row["id"]]
        assert [a["ok"] for a in log] == [False, False, False]
        assert outbox.summary(conn, NOW + 5_000) == {"pending": 1, "failed": 1, "sent": 0, "oldest_pending_s": 5}


def test_backoff_doubles_up_to_the_cap():
    assert [outbox.backoff_ms(n, base_ms=1_000, cap_ms=5_000) for n in (1, 2, 3, 4, 5)] == [
        1_000, 2_000, 4_000, 5_000, 5_000]


def test_a_row_left_sending_is_taken_again_after_its_lease_and_the_old_sender_cannot_overwrite(any_engine):
    with any_engine.begin() as conn:
        put(conn, "crash")
        first = outbox.claim_due(conn, now_ms=NOW, lease_ms=30_000)[0]
    with any_engine.begin() as conn:  # the first sender died: nothing until the lease runs out
        assert outbox.claim_due(conn, now_ms=NOW + 29_999, lease_ms=30_000) == []
        second = outbox.claim_due(conn, now_ms=NOW + 30_000, lease_ms=30_000)[0]
        assert second["attempts"] == 2
    with any_engine.begin() as conn:
        assert outbox.mark_sent(conn, second["id"], attempts=2, now_ms=NOW + 30_001) is True
        # The first sender wakes up late: its outcome is logged but does not overwrite the row.
        assert outbox.mark_failed(conn, first["id"], attempts=1, error="late", now_ms=NOW + 30_002, **RETRY) is None
        assert outbox.mark_sent(conn, first["id"], attempts=1, now_ms=NOW + 30_002) is False
    with any_engine.connect() as conn:
        got = outbox.get(conn, "crash")
        assert got["status"] == "sent" and got["sent_ms"] == NOW + 30_001
        log = outbox.attempts_of(conn, [got["id"]])[got["id"]]
        assert [a["ok"] for a in log] == [False, True, False, True]
        assert log[0]["detail"].startswith("lease expired")


def test_cancel_stops_pending_messages_by_key_prefix_only(any_engine):
    with any_engine.begin() as conn:
        put(conn, "esc:7:1:email:a_b@x")
        put(conn, "esc:7:2:email:c@x")
        put(conn, "esc:70:1:email:d@x")
        put(conn, "esc:7%:1:email:e@x")  # a wildcard in the prefix is a character, not a pattern
        outbox.claim_due(conn, now_ms=NOW, lease_ms=1, limit=1)  # the first is in flight: not cancellable
    with any_engine.begin() as conn:
        assert outbox.cancel(conn, "esc:7:") == 1
        with pytest.raises(ValueError):
            outbox.cancel(conn, "")
    with any_engine.connect() as conn:
        got = {r["key"]: r["status"] for r in outbox.list_messages(conn)}
    assert got == {"esc:7:1:email:a_b@x": "sending", "esc:7:2:email:c@x": "cancelled",
                   "esc:70:1:email:d@x": "pending", "esc:7%:1:email:e@x": "pending"}


def test_the_log_filters_by_status_and_channel_newest_first_and_is_bounded(any_engine):
    with any_engine.begin() as conn:
        for i in range(5):
            put(conn, f"w{i}")
            put(conn, f"e{i}", channel="email", address="a@b")
        outbox.cancel(conn, "w0")
    with any_engine.connect() as conn:
        assert [r["key"] for r in outbox.list_messages(conn, channels=["email"], limit=3)] == ["e4", "e3", "e2"]
        assert [r["key"] for r in outbox.list_messages(conn, statuses=["cancelled"])] == ["w0"]
        assert len(outbox.list_messages(conn, limit=10_000)) == 10


def test_concurrent_claims_never_take_a_row_twice(any_engine):
    with any_engine.begin() as conn:
        for i in range(40):
            put(conn, f"c{i:02d}")
    got: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def sender():
        try:
            while True:
                with any_engine.begin() as conn:
                    taken = outbox.claim_due(conn, now_ms=NOW, lease_ms=60_000, limit=3)
                if not taken:
                    return
                with lock:
                    got.extend(r["key"] for r in taken)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if any_engine.dialect.name == "sqlite" and errors:
        pytest.fail(f"SQLite senders failed: {errors[0]!r}")
    assert not errors
    assert sorted(got) == [f"c{i:02d}" for i in range(40)]
    with any_engine.connect() as conn:
        assert {r.status for r in conn.execute(select(outbox_table.c.status))} == {"sending"}


def test_prune_forgets_settled_messages_before_a_time_and_keeps_waiting_ones(any_engine):
    with any_engine.begin() as conn:
        for key in ("old-sent", "old-waiting", "old-cancelled", "new-sent"):
            put(conn, key, now_ms=NOW if key.startswith("old") else NOW + 10_000)
        outbox.cancel(conn, "old-cancelled")
        for row in outbox.claim_due(conn, now_ms=NOW + 10_000, lease_ms=1000, limit=10):
            if row["key"].endswith("sent"):
                outbox.mark_sent(conn, row["id"], attempts=1, now_ms=NOW + 10_000)
            else:
                outbox.mark_failed(conn, row["id"], attempts=1, error="503", now_ms=NOW + 10_000, **RETRY)
    with any_engine.begin() as conn:
        assert outbox.prune(conn, NOW + 1) == 2
        left = outbox.list_messages(conn)
        assert {r["key"] for r in left} == {"old-waiting", "new-sent"}  # waiting stays however old
        assert all(outbox.attempts_of(conn, [r["id"] for r in left]).values())  # their tries stay too
        assert outbox.prune(conn, NOW + 1) == 0


def test_a_message_keeps_the_district_it_tells_of_and_a_districts_log_reads_by_it(any_engine):
    """outbox.district, written when a message is queued (one at a time or many): an alert notification's or a
    briefing's own, none for the city's (or a district code too long to be one); a district's log and summary."""
    def msg(key, payload):
        return {"key": key, "channel": "email", "address": "a@b", "subject": key, "body": "b", "payload": payload}

    with any_engine.begin() as conn:
        outbox.enqueue(conn, **msg("a1", {"alert": {"id": 1, "district": "440303"}}), now_ms=NOW)
        outbox.enqueue_many(conn, [msg("b1", {"briefing": {"id": 2, "district": "440304"}}),
                                   msg("a2", {"alert": {"id": 3, "district": "440303"}}),
                                   msg("c1", {"k": "city"}), msg("x1", {"alert": {"id": 4, "district": "4" * 40}})],
                            now_ms=NOW)
        conn.execute(outbox_table.update().where(outbox_table.c.key == "a1").values(status="failed"))
    with any_engine.connect() as conn:
        got = dict(conn.execute(select(outbox_table.c.key, outbox_table.c.district)).all())
        assert got == {"a1": "440303", "b1": "440304", "a2": "440303", "c1": None, "x1": None}
        assert [r["key"] for r in outbox.list_messages(conn, district="440303")] == ["a2", "a1"]
        assert outbox.summary(conn, NOW + 5_000, district="440303") == {"pending": 1, "failed": 1, "sent": 0,
                                                                        "oldest_pending_s": 5}
        assert outbox.summary(conn, NOW, district="440305")["pending"] == 0
