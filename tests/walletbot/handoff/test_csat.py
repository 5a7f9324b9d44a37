"""Reading satisfaction scores from what users type or click."""

import pytest

from walletbot.handoff.csat import parse_score


@pytest.mark.parametrize("text, entity, score", [
    ("5", None, 5), ("打4分吧", None, 4), ("五星好评", None, 5), ("★★★", None, 3),
    ("非常不满意", None, 1), ("不满意", None, 2), ("一般般", None, 3), ("很满意", None, 5),
    ("/rate_service", "2", 2), ("１０００元", None, None), ("嗯", None, None),
])
def test_parse_score(text, entity, score):
    assert parse_score(text, entity) == score
