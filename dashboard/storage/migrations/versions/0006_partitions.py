"""Partition events and minute rollups by day (PostgreSQL), each day keyed by (domain, id); add hour rollups.

Moves an existing database in place: on PostgreSQL each table is renamed, a partitioned table of the same
columns takes its name, a partition is made for every day the old rows cover (and today and the next days),
the rows are copied over and the old table dropped. The hour rollups are filled from the minute rollups.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""
import time

import sqlalchemy as sa
from alembic import op

from dashboard.storage import partitions
from dashboard.storage.events import HOURS_FROM_MINUTES

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DAY_MS = 86_400_000
_EVENT_COLS = ("seq", "domain", "event_id", "ts_ms", "received_ms", "kind", "district", "street", "severity",
               "lat", "lon", "value", "unit", "title", "detail", "source")
_ROLLUP_COLS = ("minute_ms", "district", "street", "domain", "kind", "n", "sev1", "sev2", "sev3", "sev4",
                "value_sum", "value_n", "value_max")
_MINUTE_COLS = ("minute_ms", "district", "domain", "n", "sev1", "sev2", "sev3", "sev4")


def _event_columns(seq: sa.Column) -> list:
    return [
        seq,
        sa.Column("domain", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("ts_ms", sa.BigInteger, nullable=False),
        sa.Column("received_ms", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("district", sa.String(12), nullable=False),
        sa.Column("street", sa.String(128)),
        sa.Column("severity", sa.SmallInteger, nullable=False),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("value", sa.Float),
        sa.Column("unit", sa.String(32)),
        sa.Column("title", sa.String(200)),
        sa.Column("detail", sa.Text),
        sa.Column("source", sa.String(128)),
    ]


def _rollup_columns(time_col: str, street: bool = True, values: bool = True) -> list:
    cols = [sa.Column(time_col, sa.BigInteger, primary_key=True),
            sa.Column("district", sa.String(12), primary_key=True)]
    if street:
        cols.append(sa.Column("street", sa.String(128), primary_key=True, server_default=""))
    cols.append(sa.Column("domain", sa.String(16), primary_key=True))
    if street:
        cols.append(sa.Column("kind", sa.String(64), primary_key=True))
    cols += [sa.Column(c, sa.Integer, nullable=False) for c in ("n", "sev1", "sev2", "sev3", "sev4")]
    if values:
        cols += [sa.Column("value_sum", sa.Float, nullable=False), sa.Column("value_n", sa.Integer, nullable=False),
                 sa.Column("value_max", sa.Float)]
    return cols


def _days(table: str, column: str) -> set[int]:
    rows = op.get_bind().execute(sa.text(f"SELECT DISTINCT {column} / {DAY_MS} FROM {table}")).scalars()
    today = int(time.time() * 1000) // DAY_MS
    return {int(d) for d in rows} | set(range(today, today + partitions.DAYS_AHEAD + 1))


def _swap(table: str, suffix: str, cols: tuple, create, renames: dict[str, str], *, days_of: str | None = None,
          conflict: str = "") -> None:
    """Rename ``table`` aside, create its successor with ``create``, copy the rows over, drop the old one.

    ``days_of``: the time column; the successor is partitioned and gets a partition for every day of the rows.
    """
    old = f"{table}_{suffix}"
    op.rename_table(table, old)
    for name, kind in renames.items():
        new = name.replace(table, old, 1)
        op.execute(f'ALTER TABLE "{old}" RENAME CONSTRAINT "{name}" TO "{new}"' if kind == "constraint"
                   else f'ALTER INDEX "{name}" RENAME TO "{new}"')
    create()
    if days_of:
        partitions.create_days(op.get_bind(), [table], _days(old, days_of))
    col_list = ", ".join(cols)
    order = f" ORDER BY 1 {conflict}" if conflict else ""  # the first stored wins a conflict
    op.execute(f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {old}{order}")
    op.drop_table(old)  # with its partitions, if it had any


def _create_events_pg() -> None:
    op.execute("ALTER SEQUENCE events_seq_seq OWNED BY NONE")
    seq = sa.Column("seq", sa.BigInteger, nullable=False, server_default=sa.text("nextval('events_seq_seq')"))
    op.create_table("events", *_event_columns(seq),
                    sa.PrimaryKeyConstraint("seq", "ts_ms", name="events_pkey"),
                    postgresql_partition_by="RANGE (ts_ms)")  # the key: per partition (partitions.create_days)
    op.create_index("ix_events_district_ts", "events", ["district", "ts_ms"])
    op.execute("ALTER SEQUENCE events_seq_seq OWNED BY events.seq")


def _create_rollups_pg() -> None:
    op.create_table("rollups", *_rollup_columns("minute_ms"), postgresql_partition_by="RANGE (minute_ms)")
    op.create_index("ix_rollups_district_minute", "rollups", ["district", "minute_ms"])


def _create_minutes_pg() -> None:
    op.create_table("district_minutes", *_rollup_columns("minute_ms", street=False, values=False),
                    postgresql_partition_by="RANGE (minute_ms)")


def _create_hours() -> None:
    op.create_table("rollup_hours", *_rollup_columns("hour_ms"))
    op.create_index("ix_rollup_hours_district_hour", "rollup_hours", ["district", "hour_ms"])
    op.create_table("district_hours", *_rollup_columns("hour_ms", street=False, values=False))
    for sql in HOURS_FROM_MINUTES:
        op.execute(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _swap("events", "unpartitioned", _EVENT_COLS, _create_events_pg,
              {"events_pkey": "constraint", "uq_events_domain_event_id": "constraint",
               "ix_events_district_ts": "index"}, days_of="ts_ms")
        _swap("rollups", "unpartitioned", _ROLLUP_COLS, _create_rollups_pg,
              {"rollups_pkey": "constraint", "ix_rollups_district_minute": "index"}, days_of="minute_ms")
        _swap("district_minutes", "unpartitioned", _MINUTE_COLS, _create_minutes_pg,
              {"district_minutes_pkey": "constraint"}, days_of="minute_ms")
    _create_hours()  # SQLite keeps its tables and its one (domain, id) key


def _plain_events_pg() -> None:
    op.execute("ALTER SEQUENCE events_seq_seq OWNED BY NONE")
    seq = sa.Column("seq", sa.BigInteger, primary_key=True, server_default=sa.text("nextval('events_seq_seq')"))
    op.create_table("events", *_event_columns(seq),
                    sa.UniqueConstraint("domain", "event_id", name="uq_events_domain_event_id"))
    op.create_index("ix_events_district_ts", "events", ["district", "ts_ms"])
    op.execute("ALTER SEQUENCE events_seq_seq OWNED BY events.seq")


def downgrade() -> None:
    op.drop_table("district_hours")
    op.drop_index("ix_rollup_hours_district_hour", table_name="rollup_hours")
    op.drop_table("rollup_hours")
    if op.get_bind().dialect.name == "postgresql":
        # The old key was (domain, id) for all time: of one id stored on two days, the first stored is kept.
        _swap("events", "partitioned", _EVENT_COLS, _plain_events_pg,
                    {"events_pkey": "constraint", "ix_events_district_ts": "index"},
                    conflict="ON CONFLICT (domain, event_id) DO NOTHING")
        _swap("rollups", "partitioned", _ROLLUP_COLS,
                    lambda: (op.create_table("rollups", *_rollup_columns("minute_ms")),
                             op.create_index("ix_rollups_district_minute", "rollups", ["district", "minute_ms"])),
                    {"rollups_pkey": "constraint", "ix_rollups_district_minute": "index"})
        _swap("district_minutes", "partitioned", _MINUTE_COLS,
                    lambda: op.create_table("district_minutes", *_rollup_columns("minute_ms", street=False,
                                                                                 values=False)),
                    {"district_minutes_pkey": "constraint"})
