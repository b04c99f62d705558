"""Journal timestamps: UTC, microseconds, ``Z``; sortable as text (no database)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from console.journal import format_ts, parse_ts

ZONES = st.sampled_from(
    [dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(dt.timedelta(hours=-8))]
)
MOMENTS = st.datetimes(
    min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=ZONES
)


@settings(max_examples=300)
@given(MOMENTS)
def test_format_is_the_documented_strftime_in_utc(moment: dt.datetime) -> None:
    text = format_ts(moment)
    assert text == moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert text.endswith("Z")


@settings(max_examples=300)
@given(MOMENTS.filter(lambda m: m.astimezone(dt.UTC).year >= 1000))
def test_round_trip_exact_to_the_microsecond(moment: dt.datetime) -> None:
    assert parse_ts(format_ts(moment)) == moment


RECENT = st.datetimes(
    min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1), timezones=ZONES
)


@settings(max_examples=100)
@given(RECENT, RECENT)
def test_text_order_is_time_order(a: dt.datetime, b: dt.datetime) -> None:
    assert (format_ts(a) < format_ts(b)) == (a < b)
