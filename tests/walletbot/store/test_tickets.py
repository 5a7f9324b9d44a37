"""Tickets and feedback on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from walletbot.store import tickets as tq
from walletbot.store.schema import tickets, utcnow


def _open(conn, sender, *, category="request_human", priority=3, channel="web", **kw):
    return tq.open_ticket(conn=conn, channel=channel, sender_id=sender,
                          category=category, priority=priority, **kw)


def test_open_ticket_keeps_transcript_user_and_summary(conn):
    transcript = [{"role": "user", "text": "转人工", "time": "2026-11-24T08:00:00+00:00"}]
    ticket, created = _open(conn, "s1", user_id="U1001", summary="转人工", transcript=transcript)
    assert created
    assert ticket.status == "queued" and ticket.agent is None
    assert ticket.user_id == "U1001" and ticket.summary == "转人工"
    assert list(ticket.transcript) == transcript
    assert ticket.number == f"T{ticket.ticket_id:06d}"


def test_one_open_ticket_per_conversation(conn):
    first, created1 = _open(conn, "s1")
    second, created2 = _open(conn, "s1", category="complain")
    assert created1 and not created2
    assert second.ticket_id == first.ticket_id
    assert second.category == "request_human"  # the open ticket is kept as it is
    # Same sender id on another channel is another conversation.
    other, created3 = _open(conn, "s1", channel="wechat")
    assert created3 and other.ticket_id != first.ticket_id
    count = conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar_one()
    assert count == 2


def test_asking_again_while_open_raises_priority_only_upwards(conn):
    ticket, _ = _open(conn, "s1", priority=3)
    raised, created = _open(conn, "s1", category="account_compromised", priority=1)
    assert not created and raised.priority == 1
    lowered, _ = _open(conn, "s1", priority=3)
    assert lowered.priority == 1


def test_a_resolved_ticket_lets_the_conversation_open_a_new_one(conn):
    ticket, _ = _open(conn, "s1")
    assert tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")
    assert tq.resolve_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")
    assert tq.open_ticket_for(conn=conn, channel="web", sender_id="s1") is None
    again, created = _open(conn, "s1")
    assert created and again.ticket_id != ticket.ticket_id


def test_queue_is_ordered_by_priority_then_age(conn):
    now = utcnow()
    ids = {}
    for sender, priority, minutes_ago in [("old-normal", 3, 30), ("new-urgent", 1, 1),
                                          ("new-normal", 3, 2), ("old-high", 2, 20)]:
        t, _ = _open(conn, sender, priority=priority)
        conn.execute(sa.update(tickets).where(tickets.c.ticket_id == t.ticket_id)
                     .values(created_at=now - timedelta(minutes=minutes_ago)))
        ids[sender] = t.ticket_id
    order = [t.sender_id for t in tq.list_tickets(conn=conn)]
    assert order == ["new-urgent", "old-high", "old-normal", "new-normal"]
    positions = {s: tq.queue_position(conn=conn, ticket=tq.get_ticket(conn=conn, ticket_id=i))
                 for s, i in ids.items()}
    assert positions == {"new-urgent": 1, "old-high": 2, "old-normal": 3, "new-normal": 4}
    # A claimed ticket leaves the queue and is no longer counted.
    assert tq.claim_ticket(conn=conn, ticket_id=ids["new-urgent"], agent="a1")
    assert tq.queue_position(conn=conn, ticket=tq.get_ticket(conn=conn, ticket_id=ids["old-high"])) == 1
    assert tq.queue_position(conn=conn, ticket=tq.get_ticket(conn=conn, ticket_id=ids["new-urgent"])) == 0
    assert [t.sender_id for t in tq.list_tickets(conn=conn, statuses=("queued",))] == [
        "old-high", "old-normal", "new-normal"]


def test_claim_twice_only_first_wins_and_resolve_needs_the_owner(conn):
    ticket, _ = _open(conn, "s1")
    assert tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")
    assert not tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a2")
    assert not tq.resolve_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a2")
    assert tq.get_ticket(conn=conn, ticket_id=ticket.ticket_id).agent == "a1"
    assert tq.resolve_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")
    done = tq.get_ticket(conn=conn, ticket_id=ticket.ticket_id)
    assert done.status == "resolved" and done.resolved_at is not None
    assert not tq.resolve_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")


def test_claim_race_between_threads_has_exactly_one_winner(engine):
    with engine.begin() as conn:
        ticket, _ = _open(conn, "race")
    barrier = threading.Barrier(8)
    wins = []

    def claim(agent):
        barrier.wait()
        with engine.begin() as conn:
            if tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent=agent):
                wins.append(agent)

    threads = [threading.Thread(target=claim, args=(f"agent{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    with engine.begin() as conn:
        assert tq.get_ticket(conn=conn, ticket_id=ticket.ticket_id).agent == wins[0]


def test_concurrent_opens_of_one_conversation_make_one_ticket(engine):
    barrier = threading.Barrier(6)
    created = []

    def open_one():
        barrier.wait()
        with engine.begin() as conn:
            created.append(_open(conn, "twice")[1])

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert created.count(True) == 1
    with engine.begin() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar_one() == 1


def test_feedback_for_the_latest_resolved_ticket(conn):
    ticket, _ = _open(conn, "s1")
    assert tq.latest_unrated_ticket(conn=conn, channel="web", sender_id="s1") is None
    tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")
    tq.resolve_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")
    unrated = tq.latest_unrated_ticket(conn=conn, channel="web", sender_id="s1")
    assert unrated.ticket_id == ticket.ticket_id
    tq.add_feedback(conn=conn, channel="web", sender_id="s1", score=4, ticket_id=ticket.ticket_id)
    assert tq.feedback_for_ticket(conn=conn, ticket_id=ticket.ticket_id) == 4
    assert tq.latest_unrated_ticket(conn=conn, channel="web", sender_id="s1") is None


@pytest.mark.parametrize("score", [0, 6, True, "5"])
def test_feedback_refuses_bad_scores(conn, score):
    with pytest.raises(ValueError):
        tq.add_feedback(conn=conn, channel="web", sender_id="s1", score=score)


def test_a_suggestion_is_feedback_without_score(conn):
    fid = tq.add_feedback(conn=conn, channel="rest", sender_id="s1", comment="建议增加夜间客服")
    assert fid > 0
    with pytest.raises(ValueError):
        tq.add_feedback(conn=conn, channel="rest", sender_id="s1")


@pytest.mark.parametrize("kwargs", [dict(category="nonsense"), dict(priority=0),
                                    dict(priority=True), dict(sender="")])
def test_open_ticket_refuses_bad_values(conn, kwargs):
    kwargs = dict(kwargs)  # parametrized dicts are shared between backends
    sender = kwargs.pop("sender", "s1")
    args = dict(category="request_human", priority=3) | kwargs
    with pytest.raises(ValueError):
        tq.open_ticket(conn=conn, channel="web", sender_id=sender, **args)


def test_a_tickets_clocks_and_events_follow_open_claim_reply_resolve(conn):
    ticket, _ = tq.open_ticket(conn=conn, channel="web", sender_id="clock", category="complain",
                               priority=2)
    assert ticket.queued_at == ticket.created_at == ticket.in_queue_since
    assert ticket.claimed_at is None and ticket.first_reply_at is None
    assert tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="agent1")
    claimed = tq.get_ticket(conn=conn, ticket_id=ticket.ticket_id)
    assert claimed.claimed_at >= ticket.queued_at and claimed.agent_replied_at is None
    tq.touch_ticket(conn=conn, ticket_id=ticket.ticket_id)
    first = tq.get_ticket(conn=conn, ticket_id=ticket.ticket_id)
    tq.touch_ticket(conn=conn, ticket_id=ticket.ticket_id)
    second = tq.get_ticket(conn=conn, ticket_id=ticket.ticket_id)
    # The first reply stays the first; the latest moves on.
    assert second.first_reply_at == first.first_reply_at == first.agent_replied_at
    assert second.agent_replied_at >= first.agent_replied_at
    assert tq.resolve_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="agent1")
    events = tq.events_of(conn=conn, ticket_id=ticket.ticket_id)
    assert [(e.event, e.actor) for e in events] == [
        ("opened", "system"), ("claimed", "agent1"), ("resolved", "agent1")]
    assert events[0].reason == "complain"
    # A lost claim and a refused resolve record nothing.
    assert not tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="agent2")
    assert len(tq.events_of(conn=conn, ticket_id=ticket.ticket_id)) == 3


def test_an_event_reason_is_masked_and_an_unknown_event_refused(conn):
    ticket, _ = tq.open_ticket(conn=conn, channel="web", sender_id="mask", category="complain",
                               priority=3)
    tq.add_event(conn=conn, ticket_id=ticket.ticket_id, event="transferred", actor="agent1",
                 target="agent2", reason="用户卡号 6222 0212 3456 7890 123 需核实")
    reason = tq.events_of(conn=conn, ticket_id=ticket.ticket_id)[-1].reason
    assert "6222 0212 3456 7890 123" not in reason and "7890" not in reason.replace(" ", "")[:-3]
    with pytest.raises(ValueError, match="unknown ticket event"):
        tq.add_event(conn=conn, ticket_id=ticket.ticket_id, event="deleted")


def test_a_reply_is_recorded_only_while_the_ticket_is_the_agents(conn):
    ticket, _ = tq.open_ticket(conn=conn, channel="web", sender_id="race", category="complain",
                               priority=3)
    assert not tq.touch_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="agent1")  # queued
    assert tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="agent1")
    assert not tq.touch_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="agent2")
    assert tq.touch_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="agent1")
    assert tq.get_ticket(conn=conn, ticket_id=ticket.ticket_id).agent_replied_at is not None
