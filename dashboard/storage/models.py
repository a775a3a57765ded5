"""Declare the SQL tables; times are epoch milliseconds (UTC) so every engine compares them alike."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    JSON,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants BIGINT for billions of events.
BigId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("domain", String(16), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("ts_ms", BigInteger, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("district", String(12), nullable=False),
    Column("street", String(128)),
    Column("severity", SmallInteger, nullable=False),
    Column("lat", Float),
    Column("lon", Float),
    Column("value", Float),
    Column("unit", String(32)),
    Column("title", String(200)),
    Column("detail", Text),
    Column("source", String(128)),
    # The exactly-once key. On PostgreSQL a partitioned table's unique index must hold its partition key, so
    # each day partition has its own unique index on (domain, event_id) instead, and the insert probes the
    # neighbouring day for an event within DEDUPE_HORIZON_MS of midnight (docs/architecture.md, "Exactly
    # once"); the parent has none (dashboard.storage.partitions.include_object). SQLite keeps this one.
    UniqueConstraint("domain", "event_id", name="uq_events_domain_event_id"),
    # No city-wide time index: every write would pay for it, and the city-wide reads
    # (summaries, trends) come from rollups; the ticker reads the newest by seq.
    Index("ix_events_district_ts", "district", "ts_ms"),
    # A district's events of one kind over time: the drill-down's kind filter reads its matches alone, not every
    # event of the minutes the rollups point it to (a Futian minute holds ~1,400 of them at 20
    # million events a day; migration 0026).
    Index("ix_events_district_kind_ts", "district", "kind", "ts_ms"),
    # The title search (ILIKE '%...%') by trigram: PostgreSQL only (migration 0007), SQLite scans the district.
    Index("ix_events_title_trgm", "title", postgresql_using="gin", postgresql_ops={"title": "gin_trgm_ops"},
          info={"dialects": ("postgresql",)}),
    # PostgreSQL: one partition per UTC day (dashboard.storage.partitions), its primary key (seq, ts_ms).
    postgresql_partition_by="RANGE (ts_ms)",
)

def _counts() -> list[Column]:
    """Return a rollup's counts: events, and events of each severity (1-4) among them."""
    return [Column("n", Integer, nullable=False),
            *(Column(f"sev{i}", Integer, nullable=False) for i in range(1, 5))]


def _street_kind_counts() -> list[Column]:
    """Return the key's street, domain and kind, the counts, and the measured values' sum, count and peak: the
    rows the drill-down reads (minutes and hours alike, written by the same ingest statement)."""
    return [Column("street", String(128), primary_key=True, server_default=""),
            Column("domain", String(16), primary_key=True),
            Column("kind", String(64), primary_key=True),
            *_counts(),
            Column("value_sum", Float, nullable=False),
            Column("value_n", Integer, nullable=False),
            Column("value_max", Float)]


# Additive per-minute counts: each stored event adds to exactly one row, so
# several ingest workers can upsert side by side without double counting.
rollups = Table(
    "rollups",
    metadata,
    Column("minute_ms", BigInteger, primary_key=True),
    Column("district", String(12), primary_key=True),
    *_street_kind_counts(),
    Index("ix_rollups_district_minute", "district", "minute_ms"),
    # Which minutes hold a kind's or a street's events: a filtered page of events reads only those (0008).
    Index("ix_rollups_district_kind_minute", "district", "kind", "minute_ms"),
    Index("ix_rollups_district_street_minute", "district", "street", "minute_ms"),
    postgresql_partition_by="RANGE (minute_ms)",
)

# The same counts by (minute, district, domain) only: what the city-wide screens read many times a
# second, small enough that a 24-hour window stays a fast scan however busy the city is.
district_minutes = Table(
    "district_minutes",
    metadata,
    Column("minute_ms", BigInteger, primary_key=True),
    Column("district", String(12), primary_key=True),
    Column("domain", String(16), primary_key=True),
    *_counts(),
    # Which minutes hold a domain's or a severity's events, newest first (0008).
    Index("ix_district_minutes_district_minute", "district", "minute_ms"),
    postgresql_partition_by="RANGE (minute_ms)",
)

# The same two rollups by hour, kept for years (minute rollups live PANORAMA_ROLLUP_RETENTION_DAYS): what the
# 7-day and 30-day windows read, 60 times fewer rows than the minutes. Additive like the minutes, written by
# the same ingest statement.
rollup_hours = Table(
    "rollup_hours",
    metadata,
    Column("hour_ms", BigInteger, primary_key=True),
    Column("district", String(12), primary_key=True),
    *_street_kind_counts(),
    Index("ix_rollup_hours_district_hour", "district", "hour_ms"),
    Index("ix_rollup_hours_district_kind_hour", "district", "kind", "hour_ms"),
    Index("ix_rollup_hours_district_street_hour", "district", "street", "hour_ms"),
)

district_hours = Table(
    "district_hours",
    metadata,
    Column("hour_ms", BigInteger, primary_key=True),
    Column("district", String(12), primary_key=True),
    Column("domain", String(16), primary_key=True),
    *_counts(),
    Index("ix_district_hours_district_hour", "district", "hour_ms"),
)

_MERGED = text("merged_into IS NOT NULL")

incidents = Table(
    "incidents",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("domain", String(16), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("district", String(12), nullable=False),
    Column("street", String(128)),
    Column("severity", SmallInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reports", Integer, nullable=False),
    Column("title", String(200)),
    Column("lat", Float),
    Column("lon", Float),
    Column("opened_ms", BigInteger, nullable=False),
    Column("last_report_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    # When someone escalated it to emergency management (dispatch.escalation); it changes no status.
    Column("escalated_ms", BigInteger),
    # The incident this one was merged into (dispatch.merge): it is closed, and ingest sends its reports there.
    Column("merged_into", BigInteger),
    # The centre that runs it (dispatch.handover): NULL the city centre, else the district code of a district
    # centre. Hand-up and hand-down change it; each change is in the audit trail.
    Column("centre", String(12)),
    Index("ix_incidents_status", "status"),
    Index("ix_incidents_join", "district", "kind", "last_report_ms"),
    Index("ix_incidents_merged", "district", "kind", postgresql_where=_MERGED, sqlite_where=_MERGED),
)

incident_reports = Table(
    "incident_reports",
    metadata,
    Column("incident_id", BigId, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("event_seq", BigId, primary_key=True),
)

# The newest event time per domain, kept in SQL so health and freshness
# survive a Redis outage and agree across every app worker.
feed_state = Table(
    "feed_state",
    metadata,
    Column("domain", String(16), primary_key=True),
    Column("last_event_ms", BigInteger, nullable=False),
    Column("last_received_ms", BigInteger, nullable=False),
)

# Linked dispatch: one task per department an incident is routed to.
# A department holds at most one live task per incident, even if two officers dispatch at once.
_LIVE_TASK = text("state IN ('dispatched', 'acknowledged', 'on_scene')")
# What the deadline check scans: live tasks not yet escalated, a small set however old the table grows.
_UNESCALATED = text("NOT escalated AND state IN ('dispatched', 'acknowledged', 'on_scene')")

tasks = Table(
    "tasks",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", BigId, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("department", String(64), nullable=False),
    Column("lead", Boolean, nullable=False, server_default=false()),
    Column("rule", String(64)),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("ack_due_ms", BigInteger, nullable=False),
    Column("resolve_due_ms", BigInteger, nullable=False),
    # Set once, by a conditional UPDATE: several replicas checking deadlines escalate a task once.
    Column("escalated", Boolean, nullable=False, server_default=false()),
    Column("escalated_ms", BigInteger),
    # A rejection the officer has answered by dispatching again; until then the incident is back to open.
    Column("rerouted", Boolean, nullable=False, server_default=false()),
    # Added by an escalation, not by a dispatch: alone it does not make the incident dispatched.
    Column("coordination", Boolean, nullable=False, server_default=false()),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("note", Text),
    Index("ix_tasks_incident", "incident_id"),
    Index("ix_tasks_department_state", "department", "state"),
    Index("uq_tasks_live_department", "incident_id", "department", unique=True,
          postgresql_where=_LIVE_TASK, sqlite_where=_LIVE_TASK),
    Index("ix_tasks_overdue", "ack_due_ms", postgresql_where=_UNESCALATED, sqlite_where=_UNESCALATED),
)

# The audit log: every change to a task or to an incident's status, with who, when, from, to and the note.
# task_id is NULL for a change of the incident itself (dispatched, resolved, closed, re-opened).
task_events = Table(
    "task_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("task_id", BigId, ForeignKey("tasks.id", ondelete="CASCADE")),
    Column("incident_id", BigId, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(16), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("note", Text),  # the person's own words
    # What the system records, as a code and its parameters, translated when shown (dashboard.core.i18n).
    Column("code", String(32)),
    Column("params", JSON),
    Index("ix_task_events_incident", "incident_id", "id"),
    Index("ix_task_events_task", "task_id", "id"),
)

# Who may sign in. Passwords are werkzeug hashes; a disabled user keeps its row (the audit log names it).
users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    # NULL for a user who signs in only through the identity provider (single sign-on): no password matches.
    Column("password_hash", String(256)),
    Column("role", String(16), nullable=False),
    # The department a liaison acts for (a code of the city pack); NULL for the other roles.
    Column("department", String(64)),
    # The district centre the user belongs to (a district code of the city pack); NULL: the city centre.
    Column("district", String(16)),
    # The identity provider's "<issuer> <sub>" of a user signed in through OpenID Connect, who is found by it.
    Column("sso_subject", String(512)),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_login_ms", BigInteger),
    # Raised on sign-out and on disable; a session cookie carrying an older epoch is refused.
    Column("session_epoch", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("sso_subject", name="uq_users_sso_subject"),
)

# Read-only tokens for the video wall's browser, which nobody signs in on; only the SHA-256 is kept.
kiosk_tokens = Table(
    "kiosk_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(128), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger),
    # A district's wall (SPEC section 13): it shows that district only, like a user of its district centre.
    Column("district", String(16)),
)

# Briefing snapshots (SPEC section 5). ``slot`` is the exactly-once key: a scheduled slot's local time
# (``schedule:2026-11-26T08:00+08:00``) or a manual request's own key, so replicas racing for a slot
# insert one row; the claimer fills in the content and sets ``status`` to ready (or failed).
briefings = Table(
    "briefings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("slot", String(64), nullable=False, unique=True),
    Column("trigger", String(16), nullable=False),  # schedule | manual
    Column("requested_by", String(128)),  # who asked for a manual one
    Column("status", String(16), nullable=False),  # generating | ready | failed
    Column("period_start_ms", BigInteger, nullable=False),
    Column("period_end_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),  # claimed; a stale claim may be taken over
    Column("finished_ms", BigInteger),
    Column("lang", String(8), nullable=False, server_default="zh"),
    Column("headline", Text),  # JSON: the numbers the list shows, without loading the data
    Column("data", Text),  # JSON: what the report was made from
    Column("html", Text),
    Column("pdf", LargeBinary),
    Column("images", Boolean, nullable=False, server_default=false()),
    Column("note", Text),  # why images or the PDF are missing, or why it failed
    # The district centre whose briefing it is (a district code of the city pack); NULL: the city's (0022).
    Column("district", String(16)),
    Index("ix_briefings_created", "created_ms"),
    Index("ix_briefings_district_end", "district", "period_end_ms"),
)

# A briefing's report in another language than its own (``briefings.lang``): made once per language its mail's
# readers ask for (``lang`` per recipient), attached to theirs (0025).
briefing_renditions = Table(
    "briefing_renditions",
    metadata,
    Column("briefing_id", BigId, ForeignKey("briefings.id", ondelete="CASCADE"), primary_key=True),
    Column("lang", String(8), primary_key=True),
    Column("html", Text, nullable=False),
    Column("pdf", LargeBinary),
)

# Early warning (SPEC section 9). One open alert per rule and scope, whoever evaluates: the partial unique
# index is what two ingest workers racing to open the same alert meet, not a check in code.
_OPEN_ALERT = text("status <> 'resolved'")

alerts = Table(
    "alerts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("rule", String(64), nullable=False),
    Column("scope", String(200), nullable=False),  # "city", "district:440304", "street:440304:莲花", "zone:<code>"
    Column("level", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("district", String(12)),
    Column("zone", String(64)),
    Column("domain", String(16)),
    Column("started_ms", BigInteger, nullable=False),  # when the condition began to hold
    Column("fired_ms", BigInteger),
    Column("resolved_ms", BigInteger),
    Column("value", Float),
    Column("baseline", Float),
    Column("title", Text, nullable=False),  # said in Chinese and English when it was written
    Column("title_en", Text, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    # What holds a pending alert back from firing: "silence:<id>" or "mute:HH:MM-HH:MM" (NULL: nothing).
    Column("suppressed", String(64)),
    Column("incident_id", BigId, ForeignKey("incidents.id", ondelete="SET NULL")),
    Column("updated_ms", BigInteger, nullable=False),
    Index("uq_alerts_open", "rule", "scope", unique=True, postgresql_where=_OPEN_ALERT, sqlite_where=_OPEN_ALERT),
    Index("ix_alerts_status", "status", "id"),
)

# The alerts' audit trail: every change with who (a user, or "system"), when, from, to, a code and the note.
alert_events = Table(
    "alert_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("alert_id", BigId, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16), nullable=False),
    Column("code", String(32), nullable=False),
    Column("params", JSON),
    Column("note", Text),
    Index("ix_alert_events_alert", "alert_id", "id"),
)

# One-off silences: until a time, with a reason; a NULL rule, district or zone matches any.
alert_silences = Table(
    "alert_silences",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("rule", String(64)),
    Column("district", String(12)),
    Column("zone", String(64)),
    Column("until_ms", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("ended_ms", BigInteger),
    Column("ended_by", String(128)),
    Index("ix_alert_silences_until", "until_ms"),
)

# A threshold rule's condition per scope: the newest observation (event time) and since when it has held.
alert_states = Table(
    "alert_states",
    metadata,
    Column("rule", String(64), primary_key=True),
    Column("scope", String(200), primary_key=True),
    Column("last_ts_ms", BigInteger, nullable=False),
    Column("value", Float),
    Column("since_ms", BigInteger),
)

# Rate and geofence rules' matching events per scope and minute (event time), added to by every worker.
alert_counts = Table(
    "alert_counts",
    metadata,
    Column("rule", String(64), primary_key=True),
    Column("scope", String(200), primary_key=True),
    Column("minute_ms", BigInteger, primary_key=True),
    Column("n", Integer, nullable=False),
    Column("value_max", Float),
)

# Notifications (issue 16): the transactional outbox. A row is written in the same transaction as the change it
# tells of, so it exists exactly when that change committed; a sender delivers it afterwards, at least once,
# under its unique ``key`` (the idempotency key a receiver deduplicates by).
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("key", String(400), nullable=False),
    Column("channel", String(16), nullable=False),  # webhook | email | sms
    Column("address", String(320), nullable=False),  # a URL, a mailbox, a phone number
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("payload", Text, nullable=False),  # JSON
    Column("status", String(16), nullable=False),  # pending | sending | sent | failed | cancelled
    Column("attempts", Integer, nullable=False, server_default="0"),
    # pending: when it may be sent (backoff); sending: when its sender's lease runs out and another may take it.
    Column("due_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("sent_ms", BigInteger),
    Column("last_error", Text),
    # the district the message tells of (its alert's, its incident's, its briefing's; NULL: the city's), so a
    # district centre's log and summary are one indexed read (SPEC section 13)
    Column("district", String(16)),
    # the district centre that ran the incident it tells of when it was queued, where that is not the incident's
    # own district (handed down or across to another district it involves); NULL otherwise. That centre reads it
    # too, as its queue holds the incident (0024)
    Column("centre", String(16)),
    Index("uq_outbox_key", "key", unique=True),
    Index("ix_outbox_due", "status", "due_ms"),
    Index("ix_outbox_district", "district", "status"),
    Index("ix_outbox_centre", "centre", "status"),
)

# The delivery log: every attempt to send an outbox row, what came of it.
outbox_attempts = Table(
    "outbox_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("outbox_id", BigId, ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("detail", Text),
    Index("ix_outbox_attempts_outbox", "outbox_id", "id"),
)

# Duty rosters (issue 16): a person put in a role of a department from .. until, in place of the pack's shifts
# (dashboard/core/rosters.py). Ending one early sets ``until_ms`` to then and records who (``ended_*``).
roster_overrides = Table(
    "roster_overrides",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("department", String(64), nullable=False),
    Column("person", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("from_ms", BigInteger, nullable=False),
    Column("until_ms", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("ended_ms", BigInteger),
    Column("ended_by", String(128)),
    Index("ix_roster_overrides_until", "until_ms"),
)

# Open-data API keys (SPEC section 14): only the SHA-256 of a key is kept; its first characters (``prefix``) are
# shown so that an owner and an operator can tell which key a line of the list is.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("owner", String(128), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger),
)

# Major-incident declarations (SPEC section 10, 启动应急响应): one row per declaration, kept after the stand-down
# (``stood_down_*``); level changes are kept in the incident's audit trail (task_events, code ``major_level``).
_ACTIVE_MAJOR = text("stood_down_ms IS NULL")
major_incidents = Table(
    "major_incidents",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", BigId, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("level", SmallInteger, nullable=False),  # 1 (I, the gravest) .. 4 (IV)
    Column("note", Text),
    Column("declared_ms", BigInteger, nullable=False),
    Column("declared_by", String(128), nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("stood_down_ms", BigInteger),
    Column("stood_down_by", String(128)),
    # one active declaration per incident; a declaration again after a stand-down is a new row
    Index("uq_major_active", "incident_id", unique=True, postgresql_where=_ACTIVE_MAJOR, sqlite_where=_ACTIVE_MAJOR),
)

# Standard procedures (预案, the city pack's procedures.yaml): what happened to each step of an incident's
# checklist -- ticked (``done_*``) or escalated when overdue (``escalated_ms``). A step nothing happened to has no row.
procedure_steps = Table(
    "procedure_steps",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", BigId, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("step", String(64), nullable=False),
    Column("department", String(64), nullable=False),
    Column("done_ms", BigInteger),
    Column("done_by", String(128)),
    Column("escalated_ms", BigInteger),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("incident_id", "step", name="uq_procedure_steps"),
)

# Response units (SPEC section 11): one row per unit, its latest reported state upserted in place (a report
# older than ``updated_ms`` changes nothing). Seeded from the city pack's units.yaml, edited in the app.
# ``task_id``: the task it is assigned to (dashboard.dispatch.units), cleared when the task ends.
units = Table(
    "units",
    metadata,
    Column("unit", String(64), primary_key=True),
    Column("department", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("name", String(128)),
    Column("name_en", String(128)),
    Column("status", String(16), nullable=False, server_default="available"),
    Column("lat", Float),
    Column("lon", Float),
    Column("updated_ms", BigInteger),  # the newest report's ts (or the last change in the app)
    Column("track_ms", BigInteger),  # the ts of its newest point in unit_track
    Column("task_id", BigId, ForeignKey("tasks.id", ondelete="SET NULL")),
    Column("source", String(8), nullable=False, server_default="pack"),  # pack | app | feed
    # Its home district (units.yaml): the district centre that reads it; NULL: the city's (a unit of a feed)
    Column("district", String(12)),
    Index("ix_units_department_status", "department", "status"),
    Index("ix_units_district", "district"),
    Index("ix_units_task", "task_id"),
)

# A unit's track, for replay within retention: at most one point per unit every TRACK_EVERY_MS, plus every
# change of status. PostgreSQL: one partition per UTC day, dropped after PANORAMA_RETENTION_DAYS like events.
unit_track = Table(
    "unit_track",
    metadata,
    Column("unit", String(64), primary_key=True),
    Column("ts_ms", BigInteger, primary_key=True),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("task_id", BigInteger),
    Index("ix_unit_track_ts", "ts_ms"),
    postgresql_partition_by="RANGE (ts_ms)",
)
