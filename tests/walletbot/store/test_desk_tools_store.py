"""The agents' tools in the wallet DB (SQLite and PostgreSQL): capacity, transfer, auto-assignment,
notes, presence and unfreezing, with the races that each must survive."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from walletbot.store import desk_tools as dt
from walletbot.store import queries
from walletbot.store import tickets as tq
from walletbot.store.schema import tickets as tickets_table, utcnow

WINDOW = timedelta(seconds=60)
CARD = "6222 0212 3456 7890 123"


def _open(conn, sender, *, priority=3, user_id=None):
    return tq.open_ticket(conn=conn, channel="web", sender_id=sender, category="request_human",
                          priority=priority, user_id=user_id)[0]


def _get(conn, ticket):
    return tq.get_ticket(conn=conn, ticket_id=ticket.ticket_id)


def _race(count, work):
    """Runs ``work(i)`` in ``count`` threads released together; their results."""
    barrier = threading.Barrier(count)
    results = [None] * count
    errors = []

    def run(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


# --- capacity on claim ------------------------------------------------------------

def test_a_claim_at_the_cap_is_refused_and_changes_nothing(conn):
    first, second, third = (_open(conn, f"cap{i}") for i in range(3))
    assert dt.claim_within_cap(conn=conn, ticket_id=first.ticket_id, agent="a1", cap=2) == dt.CLAIMED
    assert dt.claim_within_cap(conn=conn, ticket_id=second.ticket_id, agent="a1", cap=2) == dt.CLAIMED
    assert dt.claim_within_cap(conn=conn, ticket_id=third.ticket_id, agent="a1", cap=2) == dt.FULL
    assert _get(conn, third).status == "queued"
    assert [e.event for e in tq.events_of(conn=conn, ticket_id=third.ticket_id)] == ["opened"]
    # Someone else's ticket: taken, whatever the cap.
    assert dt.claim_within_cap(conn=conn, ticket_id=first.ticket_id, agent="a2", cap=5) == dt.TAKEN
    # Resolving one makes room.
    assert tq.resolve_ticket(conn=conn, ticket_id=first.ticket_id, agent="a1")
    assert dt.claim_within_cap(conn=conn, ticket_id=third.ticket_id, agent="a1", cap=2) == dt.CLAIMED
    assert dt.agent_load(conn=conn, login="a1") == 2
    assert dt.presence_of(conn=conn)["a1"].last_assigned_at is not None


def test_concurrent_claims_never_push_an_agent_over_the_cap(engine):
    with engine.begin() as conn:
        ids = [_open(conn, f"race{i}").ticket_id for i in range(6)]

    def claim(i):
        with engine.begin() as conn:
            return dt.claim_within_cap(conn=conn, ticket_id=ids[i], agent="busy", cap=2)

    results = _race(6, claim)
    assert results.count(dt.CLAIMED) == 2 and results.count(dt.FULL) == 4
    with engine.begin() as conn:
        assert dt.agent_load(conn=conn, login="busy") == 2


# --- transfer ---------------------------------------------------------------------

def test_the_holder_transfers_with_a_masked_reason(conn):
    ticket = _open(conn, "t1")
    assert tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")
    held = _get(conn, ticket)
    result = dt.transfer_ticket(conn=conn, ticket_id=ticket.ticket_id, actor="a1", to="a2",
                                reason=f"  用户卡号 {CARD} 需要退款组处理 ", cap=5)
    assert result.outcome == dt.TRANSFERRED and result.moved and result.before.agent == "a1"
    moved = _get(conn, ticket)
    assert (moved.status, moved.agent) == ("assigned", "a2")
    assert moved.claimed_at >= held.claimed_at
    event = tq.events_of(conn=conn, ticket_id=ticket.ticket_id)[-1]
    assert (event.event, event.actor, event.target) == ("transferred", "a1", "a2")
    assert CARD not in event.reason and event.reason.endswith("需要退款组处理")
    assert dt.latest_handover(conn=conn, ticket_id=ticket.ticket_id) == event
    # The old holder may no longer move it; the new one may.
    again = dt.transfer_ticket(conn=conn, ticket_id=ticket.ticket_id, actor="a1", to=None, reason="x")
    assert again.outcome == dt.FORBIDDEN


def test_back_to_the_queue_clears_the_agent_and_restarts_the_wait(conn):
    ticket = _open(conn, "t2")
    assert tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")
    result = dt.transfer_ticket(conn=conn, ticket_id=ticket.ticket_id, actor="a1", to=None,
                                reason="需要夜班处理")
    assert result.outcome == dt.REQUEUED
    back = _get(conn, ticket)
    assert (back.status, back.agent, back.claimed_at, back.overdue_at) == ("queued", None, None, None)
    assert back.queued_at > ticket.queued_at
    event = tq.events_of(conn=conn, ticket_id=ticket.ticket_id)[-1]
    assert (event.event, event.actor, event.target, event.reason) == (
        "requeued", "a1", "a1", "需要夜班处理")
    assert dt.transfer_ticket(conn=conn, ticket_id=ticket.ticket_id, actor="a1", to=None,
                              reason="x", may_move_any=True).outcome == dt.ALREADY_QUEUED


def test_who_may_transfer_what(conn):
    queued = _open(conn, "t3")
    # A queued ticket is nobody's: only a supervisor moves it.
    assert dt.transfer_ticket(conn=conn, ticket_id=queued.ticket_id, actor="a2", to="a2",
                              reason="我来", cap=5).outcome == dt.FORBIDDEN
    assert dt.transfer_ticket(conn=conn, ticket_id=queued.ticket_id, actor="boss", to="a2",
                              reason="指派", cap=5, may_move_any=True).outcome == dt.TRANSFERRED
    # Someone else's ticket: forbidden, unless a supervisor.
    assert dt.transfer_ticket(conn=conn, ticket_id=queued.ticket_id, actor="a3", to="a3",
                              reason="抢", cap=5).outcome == dt.FORBIDDEN
    assert dt.transfer_ticket(conn=conn, ticket_id=queued.ticket_id, actor="boss", to="a2",
                              reason="again", cap=5, may_move_any=True).outcome == dt.SAME_AGENT
    assert tq.resolve_ticket(conn=conn, ticket_id=queued.ticket_id, agent="a2")
    assert dt.transfer_ticket(conn=conn, ticket_id=queued.ticket_id, actor="boss", to="a3",
                              reason="late", cap=5, may_move_any=True).outcome == dt.CLOSED
    assert dt.transfer_ticket(conn=conn, ticket_id=999999, actor="boss", to=None,
                              reason="none", may_move_any=True).outcome == dt.CLOSED


def test_a_transfer_respects_the_receivers_cap_and_needs_a_reason(conn):
    mine, theirs = _open(conn, "t4"), _open(conn, "t5")
    assert tq.claim_ticket(conn=conn, ticket_id=mine.ticket_id, agent="a1")
    assert tq.claim_ticket(conn=conn, ticket_id=theirs.ticket_id, agent="a2")
    full = dt.transfer_ticket(conn=conn, ticket_id=mine.ticket_id, actor="a1", to="a2",
                              reason="满了吗", cap=1)
    assert full.outcome == dt.FULL and _get(conn, mine).agent == "a1"
    for reason in ("", "   ", "长" * (dt.MAX_REASON + 1)):
        with pytest.raises(ValueError):
            dt.transfer_ticket(conn=conn, ticket_id=mine.ticket_id, actor="a1", to=None,
                               reason=reason)
    assert [e.event for e in tq.events_of(conn=conn, ticket_id=mine.ticket_id)] == [
        "opened", "claimed"]


def test_a_transfer_decided_on_a_stale_view_changes_nothing(conn, monkeypatch):
    ticket = _open(conn, "stale")
    stale = _get(conn, ticket)  # queued, as a supervisor's transfer read it ...
    assert tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")  # ... then a1 claimed
    monkeypatch.setattr(dt.ticket_queries, "get_ticket", lambda **_: stale)
    result = dt.transfer_ticket(conn=conn, ticket_id=ticket.ticket_id, actor="boss", to="b1",
                                reason="指派", cap=5, may_move_any=True)
    monkeypatch.undo()
    assert result.outcome == dt.CHANGED
    assert _get(conn, ticket).agent == "a1"
    assert [e.event for e in tq.events_of(conn=conn, ticket_id=ticket.ticket_id)] == [
        "opened", "claimed"]


def test_two_transfers_from_the_same_state_cannot_both_win(engine):
    with engine.begin() as conn:
        ticket = _open(conn, "twice")
        assert tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")

    def move(i):
        with engine.begin() as conn:
            return dt.transfer_ticket(conn=conn, ticket_id=ticket.ticket_id, actor="a1",
                                      to=None if i == 0 else f"b{i}", reason="换人", cap=5).outcome

    results = _race(4, move)
    assert sum(r in (dt.TRANSFERRED, dt.REQUEUED) for r in results) == 1
    assert all(r in (dt.TRANSFERRED, dt.REQUEUED, dt.FORBIDDEN, dt.CHANGED) for r in results)


def test_concurrent_transfers_to_one_agent_respect_the_cap(engine):
    with engine.begin() as conn:
        ids = []
        for i in range(4):
            ticket = _open(conn, f"to-one{i}")
            assert tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent=f"h{i}")
            ids.append(ticket.ticket_id)

    def move(i):
        with engine.begin() as conn:
            return dt.transfer_ticket(conn=conn, ticket_id=ids[i], actor=f"h{i}", to="target",
                                      reason="专人处理", cap=1).outcome

    results = _race(4, move)
    assert results.count(dt.TRANSFERRED) == 1 and results.count(dt.FULL) == 3
    with engine.begin() as conn:
        assert dt.agent_load(conn=conn, login="target") == 1


# --- automatic assignment ------------------------------------------------------------

def test_auto_assign_picks_the_least_loaded_available_agent(conn):
    for login in ("a1", "a2", "a3", "away", "paused"):
        dt.record_seen(conn=conn, login=login)
    dt.record_seen(conn=conn, login="away", at=utcnow() - timedelta(minutes=5))
    dt.set_available(conn=conn, login="paused", available=False)
    held = _open(conn, "held")
    assert tq.claim_ticket(conn=conn, ticket_id=held.ticket_id, agent="a1")
    caps = {"a1": 5, "a2": 5, "a3": 1, "away": 5, "paused": 5}
    normal, urgent = _open(conn, "normal"), _open(conn, "urgent", priority=1)
    # Urgent first. a2 and a3 hold none (a1 one), neither was assigned yet: by login.
    assert dt.auto_assign_one(conn=conn, caps=caps, window=WINDOW) == (urgent.ticket_id, "a2")
    assert dt.auto_assign_one(conn=conn, caps=caps, window=WINDOW) == (normal.ticket_id, "a3")
    third = _open(conn, "third")
    # a3 is at its cap of 1; a1 and a2 hold one each, and a2 got one just now.
    assert dt.auto_assign_one(conn=conn, caps=caps, window=WINDOW) == (third.ticket_id, "a1")
    event = tq.events_of(conn=conn, ticket_id=third.ticket_id)[-1]
    assert (event.event, event.actor, event.target) == ("assigned", "system", "a1")
    assigned = _get(conn, third)
    assert (assigned.status, assigned.agent) == ("assigned", "a1") and assigned.claimed_at
    assert dt.auto_assign_one(conn=conn, caps=caps, window=WINDOW) is None  # nothing queued
    # Agents outside the directory, offline or paused never get one.
    _open(conn, "fourth")
    only_others = {"away": 5, "paused": 5, "stranger": 5}
    assert dt.auto_assign_one(conn=conn, caps=only_others, window=WINDOW) is None


def test_auto_assign_skips_agents_at_their_cap_and_the_agent_it_came_back_from(conn):
    dt.record_seen(conn=conn, login="a1")
    dt.record_seen(conn=conn, login="a2")
    ticket = _open(conn, "back")
    assert tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")
    assert dt.transfer_ticket(conn=conn, ticket_id=ticket.ticket_id, actor="a1", to=None,
                              reason="交给别人").outcome == dt.REQUEUED
    # a1 holds nothing and is least loaded, but it just gave this ticket back.
    assert dt.auto_assign_one(conn=conn, caps={"a1": 5}, window=WINDOW) is None
    other = _open(conn, "other")
    blocker = _open(conn, "blocker", priority=1)
    assert tq.claim_ticket(conn=conn, ticket_id=blocker.ticket_id, agent="a2")
    # a2 is at its cap of 1: a1 gets the next ticket it did not give back.
    assert dt.auto_assign_one(conn=conn, caps={"a1": 5, "a2": 1}, window=WINDOW) == (
        other.ticket_id, "a1")


def test_two_auto_assigners_never_assign_one_ticket_twice(engine):
    with engine.begin() as conn:
        for login in ("a1", "a2"):
            dt.record_seen(conn=conn, login=login)
        ids = [_open(conn, f"auto{i}").ticket_id for i in range(8)]
    caps = {"a1": 3, "a2": 3}

    def assigner(_):
        mine = []
        while True:
            with engine.begin() as conn:
                done = dt.auto_assign_one(conn=conn, caps=caps, window=WINDOW)
            if done is None:
                return mine
            mine.append(done)

    results = _race(2, assigner)
    assigned = results[0] + results[1]
    assert len(assigned) == 6  # both agents full: 2 tickets stay queued
    assert len({ticket_id for ticket_id, _ in assigned}) == 6
    with engine.begin() as conn:
        loads = dt.agent_loads(conn=conn)
        assert loads == {"a1": 3, "a2": 3}
        for ticket_id in ids:
            events = [e.event for e in tq.events_of(conn=conn, ticket_id=ticket_id)]
            assert events.count("assigned") <= 1
        assert sum(tq.get_ticket(conn=conn, ticket_id=i).status == "queued" for i in ids) == 2


# --- notes, presence, unfreezing ---------------------------------------------------------

def test_notes_are_masked_ordered_and_bounded(conn):
    ticket = _open(conn, "notes")
    first = dt.add_note(conn=conn, ticket_id=ticket.ticket_id, agent="a1",
                        text=f" 用户说卡号是 {CARD} ")
    second = dt.add_note(conn=conn, ticket_id=ticket.ticket_id, agent="a2", text="已电话回访")
    assert CARD not in first.text and first.text.startswith("用户说卡号是")
    assert [n.note_id for n in dt.notes_of(conn=conn, ticket_id=ticket.ticket_id)] == [
        first.note_id, second.note_id]
    assert dt.notes_of(conn=conn, ticket_id=ticket.ticket_id, limit=1) == [second]
    for text in ("", "  ", "字" * (dt.MAX_NOTE + 1)):
        with pytest.raises(ValueError):
            dt.add_note(conn=conn, ticket_id=ticket.ticket_id, agent="a1", text=text)
    # Notes are not part of the ticket's transcript.
    assert "已电话回访" not in str(_get(conn, ticket).transcript)


def test_presence_seen_and_the_availability_switch(conn):
    assert dt.presence_of(conn=conn) == {}
    dt.record_seen(conn=conn, login="a1")
    seen = dt.presence_of(conn=conn)["a1"]
    assert seen.available and seen.online(utcnow(), WINDOW)
    dt.set_available(conn=conn, login="a1", available=False)
    dt.record_seen(conn=conn, login="a1")  # being seen does not switch it back on
    assert not dt.presence_of(conn=conn)["a1"].available
    dt.set_available(conn=conn, login="new", available=False)
    assert not dt.presence_of(conn=conn)["new"].available
    with pytest.raises(TypeError):
        dt.set_available(conn=conn, login="a1", available="yes")
    old = utcnow() - timedelta(minutes=2)
    dt.record_seen(conn=conn, login="a1", at=old)
    assert not dt.presence_of(conn=conn)["a1"].online(utcnow(), WINDOW)


def test_lift_freeze_only_changes_a_frozen_account_and_notes_how(conn):
    ticket = _open(conn, "frozen", user_id="U1001")
    assert queries.set_frozen(conn=conn, user_id="U1001", frozen=True)
    # Not held by the agent (still queued: e.g. taken back since the agent looked).
    assert dt.lift_freeze(conn=conn, user_id="U1001", ticket_id=ticket.ticket_id, agent="a1",
                          note="核验方式：甲") == dt.NOT_HELD
    assert queries.get_user(conn=conn, user_id="U1001").frozen
    assert tq.claim_ticket(conn=conn, ticket_id=ticket.ticket_id, agent="a1")
    assert dt.lift_freeze(conn=conn, user_id="U1001", ticket_id=ticket.ticket_id, agent="a2",
                          note="核验方式：甲") == dt.NOT_HELD
    assert queries.set_frozen(conn=conn, user_id="U1001", frozen=False)
    assert dt.lift_freeze(conn=conn, user_id="U1001", ticket_id=ticket.ticket_id, agent="a1",
                          note="核验方式：甲") == dt.NOT_FROZEN
    assert queries.set_frozen(conn=conn, user_id="U1001", frozen=True)
    assert dt.lift_freeze(conn=conn, user_id="U1001", ticket_id=ticket.ticket_id, agent="a1",
                          note="核验方式：甲") == dt.UNFROZEN
    assert not queries.get_user(conn=conn, user_id="U1001").frozen
    assert [n.text for n in dt.notes_of(conn=conn, ticket_id=ticket.ticket_id)] == ["核验方式：甲"]
    assert dt.lift_freeze(conn=conn, user_id="U1001", ticket_id=ticket.ticket_id, agent="a1",
                          note="again") == dt.NOT_FROZEN
    assert dt.lift_freeze(conn=conn, user_id="U9999", ticket_id=ticket.ticket_id, agent="a1",
                          note="x") == dt.NOT_HELD  # not the ticket's user


def test_auto_assignment_serves_the_queue_in_the_order_users_are_told(conn):
    """A requeued ticket keeps its place: console, position and auto-assignment agree."""
    first, _ = tq.open_ticket(conn=conn, channel="web", sender_id="first", category="complain",
                              priority=3)
    assert tq.claim_ticket(conn=conn, ticket_id=first.ticket_id, agent="agent1")
    second, _ = tq.open_ticket(conn=conn, channel="web", sender_id="second", category="complain",
                               priority=3)
    # Taken back later than the second ticket was opened.
    conn.execute(sa.update(tickets_table).where(tickets_table.c.ticket_id == first.ticket_id)
                 .values(status="queued", agent=None, queued_at=utcnow() + timedelta(seconds=5)))
    order = [t.ticket_id for t in tq.list_tickets(conn=conn, statuses=("queued",))]
    assert order == [first.ticket_id, second.ticket_id]
    assert tq.queue_position(conn=conn, ticket=tq.get_ticket(conn=conn, ticket_id=first.ticket_id)) == 1
    assert [t for t, _ in dt._queued_candidates(conn)] == order
