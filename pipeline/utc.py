"""UTC time in one place: the current time, the stamp database rows carry, the day key, the next midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def utc_stamp(now: datetime | None = None) -> str:
    """The time rows are stamped with: ISO 8601 in UTC (sorts as text); default now."""
    return (now or utc_now()).astimezone(UTC).isoformat()


def utc_day(now: datetime) -> str:
    """The UTC calendar day of ``now`` as YYYY-MM-DD (per-day quotas are keyed by it)."""
    return now.astimezone(UTC).date().isoformat()


def next_utc_midnight(now: datetime) -> datetime:
    """When a per-UTC-day quota of ``now``'s day resets."""
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
