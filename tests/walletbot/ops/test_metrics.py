"""Each metric moves when its event happens, on the real code paths (walletbot/ops/metrics.py).

The metrics live in the process-wide registry, so each test compares a
sample before and after its event. The doubles are the existing ones: the
pipeline's fake agent and scripted bot, the WeChat fakes, the desk harness,
Rasa SDK's executor with the project's own actions.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from rasa.core.channels.channel import UserMessage
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from rasa_sdk.interfaces import ActionNotFoundException

from actions.handoff import ActionHandoff
from walletbot.handoff.hours import ServiceHours
from walletbot.handoff.notify import TicketNotifier
from walletbot.handoff.service import HandoffService
from walletbot.ops import metrics, observe
from walletbot.rasa_compat import observe as rasa_observe
from walletbot.settings import Settings
from walletbot.store import tickets as ticket_queries
from walletbot.store.queue_stats import QueueFigures, queue_figures
from walletbot.store.schema import tickets
from walletbot.store.service import WalletUnavailable
from walletbot.turns.pipeline import Inbound

from tests.actions.conftest import make_tracker
from tests.walletbot.channels.wechat.doubles import (
    FakeBot, FakeWeChatApi, WeChatServer, free_port, make_channel, serve_channel, text_xml,
)
from tests.walletbot.desk.harness import call, client, login, make_desk, serve_desk, wallet_service
from tests.walletbot.turns.doubles import FakeAgent, ScriptedBot, make_pipeline

CHANNELS = ["rest", "web", "wechat"]
_msg_ids = iter(range(30_000_000, 40_000_000))


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Moves:
    """Samples of ``name`` (with these labels) before and now."""

    def __init__(self, name: str, **labels: str) -> None:
        self.name, self.labels = name, labels
        self.before = sample(name, **labels)

    @property
    def by(self) -> float:
        return sample(self.name, **self.labels) - self.before


# --- turns, latency, rate limit ----------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_turn_is_counted_by_channel_and_outcome_and_timed(channel):
    agent = FakeAgent()
    pipeline = make_pipeline(agent)
    answered = Moves("walletbot_turns_total", channel=channel, outcome="answered")
    refused = Moves("walletbot_turns_total", channel=channel, outcome="refused")
    timed = Moves("walletbot_turn_duration_seconds_count", channel=channel)
    under_10s = Moves("walletbot_turn_duration_seconds_bucket", channel=channel, le="10.0")
    await pipeline.handle(Inbound(channel=channel, sender="m1", text="你好"), ScriptedBot(agent))
    await pipeline.handle(Inbound(channel=channel, sender="m1", text="   "), ScriptedBot(agent))
    assert (answered.by, refused.by) == (1, 1)
    # Only the turn that ran the bot is timed.
    assert timed.by == 1 and under_10s.by == 1


async def test_a_failed_turn_and_a_paused_one_have_their_own_outcomes():
    agent = FakeAgent()

    async def broken(_message):
        raise RuntimeError("tracker store down")

    async def always(_conversation):
        return True

    failed = Moves("walletbot_turns_total", channel="web", outcome="failed")
    paused = Moves("walletbot_turns_total", channel="web", outcome="paused")
    await make_pipeline(agent).handle(Inbound(channel="web", sender="m2", text="你好"), broken)
    await agent.record("web:m3", "你好", [])  # a conversation the agent has
    await make_pipeline(agent, paused=always).handle(
        Inbound(channel="web", sender="m3", text="还在吗"), ScriptedBot(agent))
    assert (failed.by, paused.by) == (1, 1)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_rate_limited_messages_are_counted_by_channel(channel):
    agent = FakeAgent()
    pipeline = make_pipeline(agent, per_minute=1)
    limited = Moves("walletbot_rate_limited_messages_total", channel=channel)
    outcome = Moves("walletbot_turns_total", channel=channel, outcome="rate_limited")
    timed = Moves("walletbot_turn_duration_seconds_count", channel=channel)
    for _ in range(3):
        await pipeline.handle(Inbound(channel=channel, sender="m4", text="你好"), ScriptedBot(agent))
    assert limited.by == 2 and outcome.by == 2
    assert timed.by == 1


# --- NLU fallbacks (the real model) -----------------------------------------------


async def test_nlu_fallbacks_are_counted_for_turns_of_the_real_model(real_agent):
    rasa_observe.install()
    pipeline = make_pipeline(real_agent)
    fallbacks = Moves("walletbot_nlu_fallbacks_total", channel="rest")
    await pipeline.handle(Inbound(channel="rest", sender="m5", text="你好"),
                          real_agent.handle_message)
    assert fallbacks.by == 0
    await pipeline.handle(Inbound(channel="rest", sender="m5", text="啊啊啊啊啊"),
                          real_agent.handle_message)
    assert fallbacks.by == 1
    # A message logged outside a turn (Rasa's HTTP API does this) is not a turn's fallback.
    await real_agent.log_message(UserMessage("啊啊啊啊啊", sender_id="m6"))
    assert fallbacks.by == 1


# --- handoffs ------------------------------------------------------------------------


class QuietNotifier(TicketNotifier):
    def __init__(self):
        super().__init__(None)

    def notify(self, ticket):
        return None


async def test_a_handoff_the_action_server_opens_is_counted_once(tmp_path):
    wallet = wallet_service(tmp_path)
    handoff = HandoffService(wallet, hours=ServiceHours.parse("00:00-24:00"),
                             notifier=QuietNotifier())
    opened = Moves("walletbot_handoffs_opened_total", channel="wechat", reason="request_human")
    tracker = make_tracker(sender="o_open", channel="wechat", text="转人工", intent="request_human")
    for _ in range(2):  # the second finds the ticket open: not another handoff
        await ActionHandoff(handoff).run(CollectingDispatcher(), tracker, {})
    assert opened.by == 1


async def test_a_ticket_resolved_on_the_desk_is_counted_by_channel(tmp_path):
    wallet = wallet_service(tmp_path)
    ticket, _ = await wallet.run(ticket_queries.open_ticket, channel="web", sender_id="web-m7",
                                 category="request_human", priority=3)
    resolved = Moves("walletbot_handoffs_resolved_total", channel="web")
    async with serve_desk(make_desk(wallet)) as served, client() as http:
        await login(http, served.base, "agent1")
        url = f"{served.base}/api/tickets/{ticket.ticket_id}"
        assert (await call(http, "POST", f"{url}/resolve", body={}))[0] == 409  # not claimed
        assert resolved.by == 0
        assert (await call(http, "POST", f"{url}/claim", body={}))[0] == 200
        assert (await call(http, "POST", f"{url}/resolve", body={}))[0] == 200
    assert resolved.by == 1


# --- action errors ----------------------------------------------------------------------


def action_call(name, events):
    return {"next_action": name, "version": "3.6.21", "domain": {},
            "tracker": {"sender_id": "rest:m8", "slots": {}, "latest_message": {},
                        "events": events, "paused": False, "active_loop": {}}}


async def test_an_action_raising_in_the_action_server_is_counted_by_name():
    rasa_observe.install_sdk()
    executor = ActionExecutor()
    executor.register_package("actions")
    errors = Moves("walletbot_action_errors_total", action="action_handoff")
    unknown = Moves("walletbot_action_errors_total", action="unknown")
    # A tracker whose events are not all events: the real action breaks on it.
    with pytest.raises(AttributeError):
        await executor.run(action_call("action_handoff", [{"event": "user", "text": "x"}, 5]))
    assert errors.by == 1
    # An action name the server does not have is Rasa SDK's 404, not an action's error.
    with pytest.raises(ActionNotFoundException):
        await executor.run(action_call("action_nobody_wrote", []))
    assert unknown.by == 0 and errors.by == 1


# --- WeChat replies through the customer-service API -----------------------------------


async def test_wechat_answers_that_needed_the_customer_service_api_are_counted():
    api = await FakeWeChatApi().start()
    bot = FakeBot()
    try:
        channel = make_channel(api, reply_budget=0.4)
        bot.delays["慢"] = 1.0
        bot.answers["长"] = [{"text": "\n".join(f"第{i}条：" + "注意账户安全" * 20 for i in range(30))}]
        over = Moves("walletbot_wechat_customer_service_replies_total", reason="over_budget")
        long = Moves("walletbot_wechat_customer_service_replies_total", reason="long_reply")
        async with serve_channel(channel, bot) as base:
            wechat = WeChatServer(base)
            assert (await wechat.post(text_xml("o_fast", "快", next(_msg_ids)))).content
            assert (over.by, long.by) == (0, 0)
            assert (await wechat.post(text_xml("o_slow", "慢", next(_msg_ids)))).body == "success"
            await api.wait_delivered(1)
            assert over.by == 1
            await wechat.post(text_xml("o_long", "长", next(_msg_ids)))
            await api.wait_delivered(2)
            assert (over.by, long.by) == (1, 1)
    finally:
        await api.stop()


# --- the queue gauges --------------------------------------------------------------------


async def queued_wallet(tmp_path: Path, now: datetime):
    wallet = wallet_service(tmp_path)
    for sender, minutes in (("a", 7), ("b", 3)):
        ticket, _ = await wallet.run(ticket_queries.open_ticket, channel="rest", sender_id=sender,
                                     category="request_human", priority=3)
        await wallet.run(lambda conn, ticket_id, at: conn.execute(
            sa.update(tickets).where(tickets.c.ticket_id == ticket_id).values(queued_at=at)),
            ticket_id=ticket.ticket_id, at=now - timedelta(minutes=minutes))
    return wallet


async def test_the_queue_gauges_read_the_wallet_db_at_scrape_time(tmp_path):
    now = datetime.now(timezone.utc)
    wallet = await queued_wallet(tmp_path, now)
    reads = []

    def read():
        reads.append(1)
        return wallet.run_blocking(queue_figures)

    registry = CollectorRegistry()
    collector = metrics.QueueCollector(read, max_age=0, now=lambda: now)
    registry.register(collector)
    assert reads == []  # registering does not touch the DB
    assert registry.get_sample_value("walletbot_wallet_db_up") == 1
    assert registry.get_sample_value("walletbot_queue_length") == 2
    assert registry.get_sample_value("walletbot_queue_oldest_wait_seconds") == pytest.approx(420)
    oldest = await wallet.run(ticket_queries.open_ticket_for, channel="rest", sender_id="a")
    await wallet.run(ticket_queries.claim_ticket, ticket_id=oldest.ticket_id, agent="agent1")
    assert registry.get_sample_value("walletbot_queue_length") == 1
    assert registry.get_sample_value("walletbot_queue_oldest_wait_seconds") == pytest.approx(180)


def test_a_reading_is_reused_for_a_few_seconds():
    clock = [100.0]
    reads = []

    def read():
        reads.append(clock[0])
        return QueueFigures(length=len(reads), oldest_since=None)

    registry = CollectorRegistry()
    registry.register(metrics.QueueCollector(read, max_age=5, clock=lambda: clock[0]))
    assert registry.get_sample_value("walletbot_queue_length") == 1
    clock[0] += 4
    assert registry.get_sample_value("walletbot_queue_length") == 1
    clock[0] += 2
    assert registry.get_sample_value("walletbot_queue_length") == 2
    assert registry.get_sample_value("walletbot_queue_oldest_wait_seconds") == 0


def test_a_db_failure_does_not_break_the_scrape():
    def down():
        raise WalletUnavailable("OperationalError")

    registry = CollectorRegistry()
    registry.register(metrics.QueueCollector(down))
    text = generate_latest(registry).decode()
    assert "walletbot_wallet_db_up 0.0" in text
    # No figures rather than a false 0.
    assert "walletbot_queue_length" not in text and "oldest_wait" not in text


# --- the listener ----------------------------------------------------------------------------


def refused(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) != 0


async def test_the_listener_serves_the_metrics_on_127_0_0_1_only(tmp_path):
    wallet = await queued_wallet(tmp_path, datetime.now(timezone.utc))
    registry = CollectorRegistry()
    registry.register(metrics.QueueCollector(lambda: wallet.run_blocking(queue_figures)))
    port = free_port()
    server = metrics.serve("127.0.0.1", port, registry)
    try:
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read())
        assert b"walletbot_queue_length 2.0" in body
        assert refused("127.0.0.2", port)  # another local address: nothing listens there
        # A taken port costs the metrics, not the server.
        assert metrics.serve("127.0.0.1", port, registry) is None
    finally:
        server.shutdown()
        server.server_close()


async def test_a_rasa_server_process_serves_its_turns_and_queue(monkeypatch, tmp_path):
    wallet = await queued_wallet(tmp_path, datetime.now(timezone.utc))
    watched = []
    monkeypatch.setattr(metrics, "watch_queue", lambda read: watched.append(read))
    monkeypatch.setattr(observe, "_read_queue", lambda: wallet.run_blocking(queue_figures))
    port = free_port()
    config = Settings(env="dev", rasa_auth_token="x", metrics_port=port, action_metrics_port=None)
    server = observe.start(action_server=False, config=config)
    try:
        assert watched and watched[0]().length == 2
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read())
        text = body.decode()
        assert 'walletbot_turns_total{channel="wechat",outcome="rate_limited"}' in text
        assert "walletbot_turn_duration_seconds_bucket" in text and "_created" not in text
        # The action server's port is off in this configuration: no listener at all.
        assert observe.start(action_server=True, config=config) is None
    finally:
        server.shutdown()
        server.server_close()


def test_the_ports_come_from_the_settings_and_bad_ones_switch_metrics_off():
    production = {"WALLETBOT_ENV": "production", "METRICS_PORT": "9105", "ACTION_METRICS_PORT": "0"}
    config = Settings.from_env(production)
    assert (config.metrics_host, config.metrics_port, config.action_metrics_port) == (
        "127.0.0.1", 9105, None)
    for bad in ("nine", "70000", "-1"):
        assert Settings.from_env({"WALLETBOT_ENV": "production", "METRICS_PORT": bad}).metrics_port is None
    dev = Settings.from_env({})  # config/dev.env: both servers have a port
    assert (dev.metrics_port, dev.action_metrics_port) == (9005, 9055)
