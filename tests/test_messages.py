"""One definition of each message: the delta on panorama:updates, the gateway's frames, the views in them."""

from __future__ import annotations

import orjson
import pytest

from dashboard.core import messages
from dashboard.gateway.fanout import Fanout

ROW = {"id": 7, "kind": "fire", "district": "440304", "severity": 3, "status": "open", "reports": 2,
       "opened_ms": 1_764_900_000_000, "title": "仓库起火", "domain": "incident"}
TASK = {"id": 3, "incident_id": 7, "department": "fire", "state": "pending", "version": 1,
        "ack_due_ms": 1_764_900_300_000, "resolve_due_ms": 1_764_903_600_000, "escalated": 0}


def test_views_follow_their_typed_definitions():
    inc = messages.incident_view(ROW, "Asia/Shanghai", domain=True)
    assert set(inc) == set(messages.IncidentView.__annotations__)
    assert inc["opened_at"] == "2025-12-05T10:00:00+08:00"  # the city's offset
    assert "domain" not in messages.incident_view(ROW, "Asia/Shanghai")  # the API's shape (SPEC section 6)
    task = messages.task_view(TASK, "Asia/Shanghai")
    assert set(task) == set(messages.TaskView.__annotations__) - {"overdue"} and task["escalated"] is False
    ev = messages.event_view("traffic", "e1", 1, "congestion", "440304", None, 1, "拥堵")
    assert tuple(ev) == messages.EVENT_FIELDS


def test_every_delta_and_frame_carries_the_version():
    delta = orjson.loads(messages.encode_delta(5, incidents=[messages.incident_view(ROW, "UTC", domain=True)]))
    assert delta["v"] == messages.VERSION and delta["type"] == "delta" and "tasks" not in delta
    assert set(delta) <= set(messages.Delta.__annotations__)
    dispatch = orjson.loads(messages.encode_delta(5, tasks=[], escalations=[]))
    assert dispatch["tasks"] == [] and dispatch["escalations"] == []
    for frame in (messages.snapshot_frame(1, {}), messages.delta_frame(2, {"events": []}),
                  messages.heartbeat_frame(3), messages.status_frame(True)):
        assert orjson.loads(frame)["v"] == messages.VERSION


def test_a_delta_without_v_is_version_one_and_another_version_is_refused():
    assert messages.read_delta(b'{"type": "delta", "events": []}')["type"] == "delta"
    with pytest.raises(messages.UnknownVersion):
        messages.read_delta(b'{"v": 2, "type": "delta", "events": []}')
    with pytest.raises(ValueError):
        messages.read_delta(b"[1]")


def test_the_gateway_drops_a_delta_of_another_version_instead_of_misreading_it():
    fanout = Fanout()
    ev = {**messages.event_view("traffic", "e1", 1, "congestion", "440304", None, 1, "拥堵"), "lat": 1, "lon": 2}
    assert fanout.add_delta(orjson.dumps({"v": 2, "type": "delta", "events": [ev]})) is False
    assert not fanout.pending
    assert fanout.add_delta(messages.encode_delta(1, events=[ev])) is True
    assert [e["id"] for e in fanout.pending.events] == ["e1"]
    assert set(fanout.pending.events[0]) == set(messages.EVENT_FIELDS)  # the screens' view: no coordinates


def test_the_ingest_pipeline_and_the_dispatch_desk_publish_the_same_incident_shape():
    from dashboard.core.city import load_city
    from dashboard.storage.events import WriteResult
    from feeds.pipeline import batch_delta

    result = WriteResult()
    result.incidents.append(ROW)
    ingest = orjson.loads(batch_delta(result, 9, load_city("shenzhen").timezone))
    from dashboard.dispatch.desk import incident_doc
    assert ingest["incidents"] == [incident_doc(ROW, "Asia/Shanghai")]
