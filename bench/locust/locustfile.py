"""Locust users for the production profile through nginx: WeChat users and a desk agent.

Run by bench/soak.py (which starts the stack, binds the users and writes the
scenario file); by hand, against a stack soak.py describes in a scenario file:

    SOAK_SCENARIO=bench/.soak/<run>/scenario.json bench/.locust-venv/bin/locust \
        -f bench/locust/locustfile.py --host http://127.0.0.1:<nginx port> --headless \
        -u 11 -r 5 -t 60s --stop-timeout 90 --csv out/soak --csv-full-history --html out/soak.html

``WeChatUser``: one OpenID each (bound to the demo user 张三 beforehand), in
safe mode, a weighted mix of FAQ questions, transaction lookups (in one
message, through the form's question for the order number, and from the list
of recent top-ups with a numbered option), and now and then a handoff: ask for
a human, write while waiting, read the agent's replies (delivered through the
customer-service API, which soak.py fakes and whose inbox it serves), answer
the satisfaction question. Each user sends at most ``user_rate`` messages a
second (0: as fast as the bot answers).

``AgentUser`` (one): logs in to the desk, claims every queued ticket of the
run, greets, replies, waits for the user's answer, replies again, resolves.
At the end of the run it keeps working until no ticket is open, so every
handoff that started is finished.

Replies are judged by content (wechat_sim.judge_reply): a customer-service
fallback, the bot's apology or a reply without the expected text is a
failure in Locust's statistics. Every message sent is logged (``sent_log``)
for soak.py's check of the conversations in PostgreSQL.

Scenario file (JSON): ``token``, ``aes_key``, ``app_id``, ``openid_prefix``,
``openids`` (how many are bound), ``inbox`` (URL of the fake WeChat API),
``agent_login``, ``agent_password``, ``user_rate``, ``sent_log``,
``faq`` (``[{"question", "expect"}]``), ``lookup`` (messages and expected
texts), ``failure_markers``, ``handoff_timeout``.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import gevent
import requests
from gevent.pool import Group
from locust import HttpUser, between, constant, events, task
from locust.exception import StopUser

sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak_flow import (  # noqa: E402
    AGENT_REPLIES, CSAT_ANSWERS, CSAT_PROMPT, CSAT_THANKS, TICKET_MARK, USER_TO_AGENT,
    USER_WAITING,
)
from wechat_sim import Account, judge_reply  # noqa: E402

POLL_SECONDS = 0.5
# At the end the agent stops after this long without an open ticket (at least).
QUIET_SECONDS = 10.0


@lru_cache(maxsize=1)
def scenario() -> Dict[str, Any]:
    """The run's settings, written by bench/soak.py (``SOAK_SCENARIO``)."""
    path = os.environ.get("SOAK_SCENARIO")
    if not path:
        raise RuntimeError("set SOAK_SCENARIO to the scenario file bench/soak.py writes")
    return json.loads(Path(path).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def account() -> Account:
    s = scenario()
    return Account(s["token"], s["aes_key"], s["app_id"])


_openids = itertools.count()
# WeChat's MsgId, unique across the Locust runs of one stack (each starts at a later
# second, a million ids apart). Twelve digits: the bot masks longer digit runs in
# what it stores (card numbers), MsgIds in message metadata too, and soak.py
# matches the stored ones with those sent.
_msg_ids = itertools.count((int(time.time()) % 10**6) * 10**6)


class SentLog:
    """One JSON line per message sent: what soak.py compares with PostgreSQL."""

    handle: Any = None

    @classmethod
    def write(cls, record: Dict[str, Any]) -> None:
        if cls.handle is None:
            cls.handle = open(scenario()["sent_log"], "a", encoding="utf-8")
        cls.handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    @classmethod
    def close(cls) -> None:
        if cls.handle is not None:
            cls.handle.close()
            cls.handle = None


@events.quitting.add_listener
def _close_log(**_: Any) -> None:
    SentLog.close()


class Pacer:
    """At most ``rate`` messages a second for one user, without bursts after a long wait."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_at: Optional[float] = None

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if self.next_at is None:  # users spawned together must not send in step
            self.next_at = now + random.uniform(0, self.interval)
        at = max(self.next_at, now)
        if at > now:
            gevent.sleep(at - now)
        self.next_at = at + self.interval


def fire_failure(environment: Any, name: str, started: float, reason: str) -> None:
    """A failure that is no single HTTP request (e.g. an agent reply that never came)."""
    environment.events.request.fire(
        request_type="WAIT", name=name, response_time=(time.monotonic() - started) * 1000,
        response_length=0, exception=AssertionError(reason), context={})


class WeChatUser(HttpUser):
    """A WeChat user of the Official Account, bound to 张三."""

    wait_time = constant(0)  # Pacer spaces the messages, inside tasks too
    # Past WeChat's 5 s a reply is lost anyway (judge_reply fails it); a hung
    # request must not hold the user for Locust's default minute.
    network_timeout = 30.0

    def on_start(self) -> None:
        s = scenario()
        index = next(_openids)
        if index >= int(s["openids"]):
            raise StopUser(f"only {s['openids']} OpenIDs are bound; more users than that")
        self.openid = f"{s['openid_prefix']}{index}"
        self.pacer = Pacer(float(s.get("user_rate") or 0))
        self.inbox_seen = 0
        self.inbox = requests.Session()

    def say(self, step: str, text: str, expect: Sequence[str] = (), *,
            silent: bool = False) -> Optional[str]:
        """Sends ``text``; the reply, or None when it failed (counted as a failure)."""
        self.pacer.wait()
        msg_id = next(_msg_ids)
        path, body = account().request(self.openid, text, msg_id)
        SentLog.write({"openid": self.openid, "msg_id": str(msg_id), "step": step,
                       "text": text, "at": time.time()})
        started = time.monotonic()
        with self.client.post(path, data=body, name=f"wechat: {step}", catch_response=True,
                              headers={"Content-Type": "text/xml"}) as response:
            reply, problem = judge_reply(
                response.status_code, response.text or "", account(), expect=expect,
                failure_markers=scenario().get("failure_markers", ()), silent=silent,
                seconds=time.monotonic() - started)
            if problem:
                response.failure(problem)
                return None
            response.success()
        return reply if reply is not None else ""

    # --- the mix ---------------------------------------------------------

    @task(40)
    def faq(self) -> None:
        case = random.choice(scenario()["faq"])
        self.say("faq", case["question"], [case["expect"]])

    @task(12)
    def lookup(self) -> None:
        lookup = scenario()["lookup"]
        self.say("lookup", lookup["direct"], [lookup["found"]])

    @task(12)
    def lookup_with_form(self) -> None:
        lookup = scenario()["lookup"]
        if self.say("lookup form: ask", lookup["ask"], [lookup["asks_for_id"]]) is not None:
            self.say("lookup form: order id", lookup["order_id"], [lookup["found"]])

    @task(8)
    def recent_topups(self) -> None:
        lookup = scenario()["lookup"]
        if self.say("recent top-ups", lookup["recent"], [lookup["recent_lists"]]) is not None:
            self.say("recent top-ups: pick 1", "1", [lookup["recent_picked"]])

    @task(1)
    def handoff(self) -> None:
        """Human handoff: ticket, agent replies (customer-service API), CSAT."""
        self.inbox_seen = len(self.read_inbox())
        if self.say("handoff: ask", "转人工", [TICKET_MARK]) is None:
            return
        self.say("handoff: while waiting", USER_WAITING, silent=True)
        if not self.wait_inbox("handoff: agent reply", AGENT_REPLIES[0]):
            return
        self.say("handoff: answer agent", USER_TO_AGENT, silent=True)
        if not self.wait_inbox("handoff: csat question", CSAT_PROMPT):
            return
        self.say("handoff: csat", random.choice(CSAT_ANSWERS), [CSAT_THANKS])

    # --- the customer-service API's deliveries ------------------------------

    def read_inbox(self) -> List[str]:
        answer = self.inbox.get(f"{scenario()['inbox']}/bench/inbox",
                                params={"openid": self.openid}, timeout=10)
        answer.raise_for_status()
        return list(answer.json()["messages"])

    def wait_inbox(self, name: str, wanted: str) -> bool:
        """Waits for a delivery containing ``wanted``; a timeout is a failure."""
        started = time.monotonic()
        deadline = started + float(scenario().get("handoff_timeout") or 90)
        while time.monotonic() < deadline:
            messages = self.read_inbox()
            fresh = messages[self.inbox_seen:]
            for offset, text in enumerate(fresh):
                if wanted in text:
                    self.inbox_seen += offset + 1
                    return True
            gevent.sleep(POLL_SECONDS)
        fire_failure(self.environment, name, started, f"no delivery containing {wanted!r}")
        return False


class AgentUser(HttpUser):
    """The desk's agent: works every queued ticket of the run's users, several at once."""

    fixed_count = 1
    wait_time = between(1, 2)  # the desk page polls about as often

    def on_start(self) -> None:
        s = scenario()
        self.prefix = s["openid_prefix"]
        self.handling: set = set()
        self.work = Group()
        with self.client.post("/webhooks/desk/login", name="desk: login", catch_response=True,
                              json={"login": s["agent_login"], "password": s["agent_password"]}
                              ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:120]}")
                raise StopUser("the agent could not log in")
            self.headers = {"Authorization": f"Bearer {response.json()['token']}"}

    def api(self, method: str, path: str, name: str, body: Any = None,
            ok: Sequence[int] = (200,)) -> Optional[Any]:
        """A desk API call; its JSON, or None if its status is not in ``ok`` (a failure)."""
        kwargs: Dict[str, Any] = {"headers": self.headers, "name": f"desk: {name}",
                                  "catch_response": True}
        if method == "POST":
            kwargs["json"] = body if body is not None else {}
        with self.client.request(method, f"/webhooks/desk/api/{path}", **kwargs) as response:
            if response.status_code not in ok:
                response.failure(f"HTTP {response.status_code}: {response.text[:120]}")
                return None
            response.success()
            return {"status": response.status_code, "body": response.json()}

    def open_tickets(self) -> List[Dict[str, Any]]:
        answer = self.api("GET", "tickets", "tickets")
        if answer is None:
            return []
        return [t for t in answer["body"]["tickets"] if t["sender_id"].startswith(self.prefix)]

    @task
    def poll(self) -> None:
        self.take_queued(self.open_tickets())

    def take_queued(self, tickets: List[Dict[str, Any]]) -> None:
        for ticket in tickets:
            if ticket["status"] != "queued" or ticket["id"] in self.handling:
                continue
            # 409: someone else has it (another desk); not this agent's to work.
            claimed = self.api("POST", f"tickets/{ticket['id']}/claim", "claim", ok=(200, 409))
            if claimed is not None and claimed["status"] == 200:
                self.handling.add(ticket["id"])
                self.work.spawn(self.serve, ticket["id"])

    def user_answered(self, ticket_id: Any) -> bool:
        """Whether the user has answered this ticket's first agent reply (the transcript).

        Matched by text after the last such reply: the user also writes while
        waiting, and earlier handoffs of the same user are in the transcript too.
        """
        answer = self.api("GET", f"tickets/{ticket_id}", "ticket")
        if answer is None:
            return False
        lines = answer["body"]["transcript"]
        asked = [i for i, line in enumerate(lines)
                 if line.get("role") == "agent" and line.get("text") == AGENT_REPLIES[0]]
        return bool(asked) and any(line.get("role") == "user" and line.get("text") == USER_TO_AGENT
                                   for line in lines[asked[-1] + 1:])

    def serve(self, ticket_id: Any) -> None:
        """One claimed ticket: reply, wait for the user's answer, reply, resolve."""
        try:
            gevent.sleep(random.uniform(0.5, 1.5))  # reading the transcript
            if self.api("POST", f"tickets/{ticket_id}/reply", "reply",
                        {"text": AGENT_REPLIES[0]}) is None:
                return
            started = time.monotonic()
            deadline = started + float(scenario().get("handoff_timeout") or 90)
            while not self.user_answered(ticket_id):
                if time.monotonic() > deadline:
                    fire_failure(self.environment, "desk: user answer", started,
                                 "the user did not answer the agent")
                    break
                gevent.sleep(1.0)
            gevent.sleep(random.uniform(0.5, 1.5))  # typing
            if self.api("POST", f"tickets/{ticket_id}/reply", "reply",
                        {"text": AGENT_REPLIES[1]}) is None:
                return
            self.api("POST", f"tickets/{ticket_id}/resolve", "resolve")
        finally:
            self.handling.discard(ticket_id)

    def on_stop(self) -> None:
        """Finishes every handoff the WeChat users started before the run ended."""
        rate = float(scenario().get("user_rate") or 0)
        # Longer than a user's pause before asking for a human (1 / user_rate).
        quiet_needed = max(QUIET_SECONDS, 2.0 / rate) if rate else QUIET_SECONDS
        deadline = time.monotonic() + float(scenario().get("handoff_timeout") or 90)
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < quiet_needed:
            tickets = self.open_tickets()
            self.take_queued(tickets)
            if tickets or self.handling:
                quiet_since = time.monotonic()
            gevent.sleep(1.0)
        self.work.join(timeout=max(0.0, deadline - time.monotonic()))
