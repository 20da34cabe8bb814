"""``acr.clock``: aware UTC datetimes inside, ISO 8601 with milliseconds and ``Z`` at the edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from acr import clock

HELSINKI_WINTER = timezone(timedelta(hours=2))


def test_now_is_an_aware_utc_moment() -> None:
    before = datetime.now(UTC)
    moment = clock.now()
    assert moment.tzinfo is UTC and before <= moment <= datetime.now(UTC)


def test_iso_writes_milliseconds_and_z_whatever_the_offset() -> None:
    assert clock.iso(datetime(2026, 12, 3, 16, 20, 59, 598765, tzinfo=UTC)) == "2026-12-03T16:20:59.598Z"
    assert clock.iso(datetime(2026, 12, 3, 18, 20, 59, tzinfo=HELSINKI_WINTER)) == "2026-12-03T16:20:59.000Z"


@pytest.mark.parametrize(
    "text", ["2026-12-03T16:20:59.598Z", "2026-12-03T16:20:59.598+00:00", "2026-12-03T18:20:59.598+02:00"]
)
def test_parse_reads_z_and_offsets_as_the_same_utc_moment(text: str) -> None:
    moment = clock.parse(text)
    assert moment == datetime(2026, 12, 3, 16, 20, 59, 598000, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["2026-12-03T16:20:59", "yesterday", ""])
def test_parse_refuses_a_time_without_an_offset_or_no_time_at_all(text: str) -> None:
    with pytest.raises(ValueError):
        clock.parse(text)


def test_iso_and_parse_round_trip_to_the_millisecond() -> None:
    moment = clock.now()
    assert clock.parse(clock.iso(moment)) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    text = "2026-01-01T00:00:00.001Z"
    assert clock.iso(clock.parse(text)) == text


def test_from_timestamp_is_seconds_after_the_epoch_in_utc() -> None:
    assert clock.from_timestamp(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert clock.iso(clock.from_timestamp(1_796_315_259.598)) == "2026-12-03T16:27:39.598Z"
    assert clock.from_timestamp(1.5).tzinfo is UTC
