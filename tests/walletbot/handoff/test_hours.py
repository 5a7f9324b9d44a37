from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from walletbot.handoff.hours import ServiceHours, when_text

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(hour, minute=0, day=24):
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


def test_daytime_hours():
    hours = ServiceHours.parse("09:00-21:00")
    assert not hours.is_open(at(8, 59)) and hours.is_open(at(9)) and not hours.is_open(at(21))
    assert hours.next_opening(at(22)) == at(9, day=25)
    assert hours.next_opening(at(7)) == at(9)
    assert when_text(hours.next_opening(at(22)), at(22), hours.tz) == "明天 09:00"
    assert when_text(hours.next_opening(at(7)), at(7), hours.tz) == "今天 09:00"


def test_overnight_and_around_the_clock():
    night = ServiceHours.parse("20:00-02:00")
    assert night.is_open(at(23)) and night.is_open(at(1)) and not night.is_open(at(12))
    always = ServiceHours.parse("00:00-24:00")
    assert always.always_open and always.is_open(at(3))
    assert always.describe() == "每天 00:00–24:00"


@pytest.mark.parametrize("spec", ["", "9-21", "25:00-26:00", "09:00-24:30", "abc"])
def test_bad_specs_say_what_is_expected(spec):
    with pytest.raises(ValueError, match="HH:MM|range"):
        ServiceHours.parse(spec)


def test_unknown_zone():
    with pytest.raises(ValueError, match="time zone"):
        ServiceHours.parse("09:00-18:00", "Mars/Base")
