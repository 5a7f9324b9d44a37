"""Service-level queries (walletbot/store/sla.py) on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from walletbot.store import make_engine
from walletbot.store import sla
from walletbot.store import tickets as tq
from walletbot.store.schema import agent_presence, tickets, utcnow

TARGETS = {1: timedelta(minutes=5), 2: timedelta(minutes=15), 3: timedelta(minutes=30)}
REASONS = {1: "排队超过 5 分钟仍未接入", 2: "排队超过 15 分钟仍未接入", 3: "排队超过 30 分钟仍未接入"}
REPLY = timedelta(minutes=10)
SEEN = timedelta(seconds=60)
INTERVAL = timedelta(minutes=5)


def open_(conn, sender, priority=3):
    ticket, _ = tq.open_ticket(conn=conn, channel="web", sender_id=sender,
                               category="request_human", priority=priority, summary="我要人工")
    return ticket


def set_clocks(conn, ticket_id, **values):
    conn.execute(sa.update(tickets).where(tickets.c.ticket_id == ticket_id).values(**values))


def events(conn, ticket_id, kind):
    return [e for e in tq.events_of(conn=conn, ticket_id=ticket_id) if e.event == kind]


def notices(conn, now):
    return sla.claim_wait_notices(conn=conn, now=now, interval=INTERVAL, fallback_minutes=5,
                                  seen_within=SEEN)


def test_a_queued_ticket_past_its_priority_target_is_marked_once(conn):
    urgent, normal = open_(conn, "u", priority=1), open_(conn, "n", priority=3)
    assigned = open_(conn, "a", priority=1)
    tq.claim_ticket(conn=conn, ticket_id=assigned.ticket_id, agent="agent1")
    now = utcnow() + timedelta(minutes=6)  # past urgent's 5, not normal's 30
    marked = sla.mark_overdue(conn=conn, now=now, targets=TARGETS, reasons=REASONS)
    assert [t.ticket_id for t in marked] == [urgent.ticket_id]
    assert marked[0].overdue_at == now
    (event,) = events(conn, urgent.ticket_id, "overdue")
    assert (event.actor, event.reason) == ("system", "排队超过 5 分钟仍未接入")
    assert sla.mark_overdue(conn=conn, now=now + timedelta(minutes=1), targets=TARGETS,
                            reasons=REASONS) == []
    later = now + timedelta(minutes=25)
    assert [t.ticket_id for t in sla.mark_overdue(conn=conn, now=later, targets=TARGETS,
                                                  reasons=REASONS)] == [normal.ticket_id]
    assert tq.get_ticket(conn=conn, ticket_id=assigned.ticket_id).overdue_at is None


def test_the_queue_clock_restarts_when_a_ticket_is_requeued(conn):
    ticket = open_(conn, "r", priority=1)
    set_clocks(conn, ticket.ticket_id, queued_at=utcnow() + timedelta(minutes=20))
    now = utcnow() + timedelta(minutes=21)  # 21 minutes since opened, 1 since requeued
    assert sla.mark_overdue(conn=conn, now=now, targets=TARGETS, reasons=REASONS) == []


def test_a_claim_without_a_reply_goes_back_to_the_queue(conn):
    silent, replied, fresh = open_(conn, "s"), open_(conn, "r"), open_(conn, "f")
    for ticket in (silent, replied, fresh):
        tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="agent1")
    tq.touch_ticket(conn=conn, ticket_id=replied.ticket_id)
    set_clocks(conn, fresh.ticket_id, claimed_at=utcnow() + timedelta(minutes=5))
    now = utcnow() + timedelta(minutes=11)
    moved = sla.requeue_silent(conn=conn, now=now, target=REPLY,
                               reason="认领后 10 分钟未回复，已退回队列")
    assert [(t.ticket_id, agent) for t, agent in moved] == [(silent.ticket_id, "agent1")]
    back = tq.get_ticket(conn=conn, ticket_id=silent.ticket_id)
    assert (back.status, back.agent, back.claimed_at, back.overdue_at) == ("queued", None, None, None)
    assert back.queued_at == now and back.in_queue_since == now
    (event,) = events(conn, silent.ticket_id, "requeued")
    assert (event.actor, event.target, event.reason) == (
        "system", "agent1", "认领后 10 分钟未回复，已退回队列")
    for ticket in (replied, fresh):
        assert tq.get_ticket(conn=conn, ticket_id=ticket.ticket_id).status == "assigned"
    assert sla.requeue_silent(conn=conn, now=now, target=REPLY, reason="x") == []


def test_an_earlier_agents_reply_does_not_count_for_the_new_claim(conn):
    ticket = open_(conn, "e")
    tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="agent1")
    tq.touch_ticket(conn=conn, ticket_id=ticket.ticket_id)
    # agent2 has it now (a transfer): claimed after agent1's reply.
    set_clocks(conn, ticket.ticket_id, agent="agent2", claimed_at=utcnow() + timedelta(seconds=1))
    moved = sla.requeue_silent(conn=conn, now=utcnow() + timedelta(minutes=12), target=REPLY,
                               reason="认领后 10 分钟未回复，已退回队列")
    assert [agent for _, agent in moved] == ["agent2"]


def test_wait_updates_are_throttled_and_only_sent_when_something_changed(conn):
    first, second, mine = open_(conn, "w1"), open_(conn, "w2"), open_(conn, "w3")
    now = utcnow()
    sla.record_wait_told(conn=conn, ticket_id=mine.ticket_id, minutes=15, now=now)
    sla.record_wait_told(conn=conn, ticket_id=first.ticket_id, minutes=5, now=now)
    sla.record_wait_told(conn=conn, ticket_id=second.ticket_id, minutes=10, now=now)
    later = now + INTERVAL + timedelta(seconds=1)
    assert notices(conn, later) == []  # nobody's estimate moved: no message
    tq.claim_ticket(conn=conn, ticket_id=first.ticket_id, agent="agent1")
    tq.claim_ticket(conn=conn, ticket_id=second.ticket_id, agent="agent2")
    # Only just told: the throttle holds the news back...
    sla.record_wait_told(conn=conn, ticket_id=mine.ticket_id, minutes=15, now=later)
    assert notices(conn, later + timedelta(minutes=1)) == []
    # ...until the interval has passed: 15 -> 5 minutes is news.
    due = later + INTERVAL
    (notice,) = notices(conn, due)
    assert notice.ticket.ticket_id == mine.ticket_id and not notice.overdue
    assert (notice.estimate.position, notice.estimate.ahead, notice.estimate.minutes) == (1, 0, 5)
    assert notices(conn, due) == []  # claimed: a second caller finds nothing to send
    assert notices(conn, due + INTERVAL * 2) == []  # unchanged since: still nothing
    late = now + timedelta(minutes=45)  # past the normal target of 30
    sla.mark_overdue(conn=conn, now=late, targets=TARGETS, reasons=REASONS)
    (overdue,) = notices(conn, late)
    assert overdue.overdue and overdue.ticket.ticket_id == mine.ticket_id
    assert notices(conn, late + INTERVAL * 3) == []  # overdue is said once, not every interval


def test_a_user_never_told_a_wait_gets_one(conn):
    ticket = open_(conn, "never")
    (notice,) = notices(conn, utcnow())
    assert notice.ticket.ticket_id == ticket.ticket_id and notice.estimate.minutes == 5
    row = tq.get_ticket(conn=conn, ticket_id=ticket.ticket_id)
    assert row.wait_notice_at is not None
    assert sla.told_minutes(conn=conn, ticket_ids=[ticket.ticket_id]) == {ticket.ticket_id: 5}


def resolved_after(conn, sender, minutes, *, hours_ago=1):
    ticket = open_(conn, sender)
    tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="agent1")
    tq.resolve_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="agent1")
    resolved = utcnow() - timedelta(hours=hours_ago)
    set_clocks(conn, ticket.ticket_id, claimed_at=resolved - timedelta(minutes=minutes),
               resolved_at=resolved)


def test_the_estimate_comes_from_recent_handling_times_and_available_agents(conn):
    now = utcnow()
    for sender, minutes in (("h1", 4), ("h2", 6), ("h3", 20)):
        resolved_after(conn, sender, minutes)
    resolved_after(conn, "old", 600, hours_ago=30)  # older than the history: ignored
    assert sla.handling_minutes(conn=conn, now=now) == 6  # the median: the 20 does not drag it
    conn.execute(sa.insert(agent_presence), [
        {"login": "agent1", "last_seen_at": now, "available": True},
        {"login": "agent2", "last_seen_at": now - timedelta(seconds=10), "available": True},
        {"login": "agent3", "last_seen_at": now, "available": False},  # paused
        {"login": "agent4", "last_seen_at": now - timedelta(minutes=5), "available": True},  # gone
    ])
    assert sla.agents_available(conn=conn, now=now, seen_within=SEEN) == 2
    queued = [open_(conn, f"q{i}") for i in range(3)]
    estimate = sla.estimate_wait(conn=conn, ticket=queued[2], now=now, fallback_minutes=5,
                                 seen_within=SEEN)
    assert (estimate.position, estimate.measured, estimate.agents) == (3, True, 2)
    assert estimate.minutes == 9  # 3 places x 6 minutes / 2 agents


def test_without_history_the_fallback_is_used_and_at_least_one_agent_counted(conn):
    resolved_after(conn, "only", 50)  # one ticket is too little history
    now = utcnow()
    assert sla.handling_minutes(conn=conn, now=now) is None
    assert sla.agents_available(conn=conn, now=now, seen_within=SEEN) == 1
    queued = [open_(conn, f"q{i}") for i in range(2)]
    estimate = sla.estimate_wait(conn=conn, ticket=queued[1], now=now, fallback_minutes=7,
                                 seen_within=SEEN)
    assert (estimate.position, estimate.measured, estimate.minutes) == (2, False, 14)
    claimed = queued[0]
    tq.claim_ticket(conn=conn, ticket_id=claimed.ticket_id, agent="agent1")
    claimed = tq.get_ticket(conn=conn, ticket_id=claimed.ticket_id)
    assert sla.estimate_wait(conn=conn, ticket=claimed, now=now, fallback_minutes=7,
                             seen_within=SEEN).minutes == 0


def test_requeue_notices_are_the_callers_own(conn):
    mine, theirs = open_(conn, "m"), open_(conn, "t")
    tq.claim_ticket(conn=conn, ticket_id=mine.ticket_id, agent="agent1")
    tq.claim_ticket(conn=conn, ticket_id=theirs.ticket_id, agent="agent2")
    start = sla.last_event_id(conn=conn)
    sla.requeue_silent(conn=conn, now=utcnow() + timedelta(minutes=11), target=REPLY,
                       reason="认领后 10 分钟未回复，已退回队列")
    (notice,) = sla.requeue_notices(conn=conn, agent="agent1", after_id=start)
    assert notice.ticket_id == mine.ticket_id and notice.event_id > start
    assert sla.requeue_notices(conn=conn, agent="agent1", after_id=notice.event_id) == []
    assert [n.ticket_id for n in sla.requeue_notices(conn=conn, agent="agent2")] == [theirs.ticket_id]


def race(engines, work):
    """Runs ``work(conn)`` on each engine in its own thread and transaction, at once."""
    barrier = threading.Barrier(len(engines))
    results, errors = [None] * len(engines), []

    def run(index, engine):
        try:
            barrier.wait(10)
            with engine.begin() as conn:
                results[index] = work(conn)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, e)) for i, e in enumerate(engines)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_two_replicas_ticking_at_once_fire_each_timer_exactly_once(engine, db_url):
    other = make_engine(db_url)  # the second replica: its own engine and connections
    try:
        with engine.begin() as conn:
            queued = [open_(conn, f"race-q{i}", priority=1) for i in range(4)]
            claimed = [open_(conn, f"race-c{i}") for i in range(4)]
            for ticket in claimed:
                tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="agent1")
        now = utcnow() + timedelta(minutes=11)
        engines = [engine, other]

        def ids(results, key=lambda t: t.ticket_id):
            won = [[key(item) for item in result] for result in results]
            return sorted(won[0] + won[1]), won

        all_won, _ = ids(race(engines, lambda conn: sla.mark_overdue(
            conn=conn, now=now, targets=TARGETS, reasons=REASONS)))
        assert all_won == sorted(t.ticket_id for t in queued)  # each once, by one replica
        all_won, _ = ids(race(engines, lambda conn: sla.requeue_silent(
            conn=conn, now=now, target=REPLY, reason="认领后 10 分钟未回复，已退回队列")),
            key=lambda pair: pair[0].ticket_id)
        assert all_won == sorted(t.ticket_id for t in claimed)
        all_won, _ = ids(race(engines, lambda conn: notices(conn, now)),
                         key=lambda notice: notice.ticket.ticket_id)
        assert all_won == sorted(t.ticket_id for t in queued + claimed)
        with engine.begin() as conn:
            for ticket in queued:
                assert len(events(conn, ticket.ticket_id, "overdue")) == 1
            for ticket in claimed:
                assert len(events(conn, ticket.ticket_id, "requeued")) == 1
    finally:
        other.dispose()
