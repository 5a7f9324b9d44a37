"""The domain goes to the actions that read it, and only to them (selective domain).

The domain is about half of every action request (9 kB of JSON, 20 kB once
Rasa escapes its Chinese); endpoints.yml turns on Rasa's selective domain, so
only the actions domain.yml marks ``send_domain: true`` receive it. An action
that reads its ``domain`` argument without the mark would get ``{}``, so the
mark is checked against the action server's own classes.
"""

import ast
import re
import inspect
import textwrap
from pathlib import Path
from typing import Set

import pytest
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config
from rasa_sdk import Action
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.forms import ValidationAction

ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS = [ROOT / "endpoints.yml", ROOT / "config" / "prod" / "endpoints.yml"]


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


def custom_actions(domain: Domain) -> Set[str]:
    # user_actions also lists the responses (utter_*), which Rasa sends itself.
    return {name for name in domain.user_actions if not name.startswith("utter_")}


def registered_actions() -> Set[type]:
    executor = ActionExecutor()
    executor.register_package("actions")
    # register_package registers every Action subclass loaded, this module's too.
    owners = {type(getattr(action, "__self__", None)) for action in executor.actions.values()}
    return {cls for cls in owners if cls.__module__.split(".")[0] == "actions"}


def reads_domain(cls: type) -> bool:
    """Whether the action's own methods use their ``domain`` argument, or rasa-sdk's do."""
    if issubclass(cls, ValidationAction):
        return True  # rasa-sdk reads the form's required slots and the slot mappings
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] in ("rasa_sdk", "builtins", "abc"):
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        if any(isinstance(node, ast.Name) and node.id == "domain" and isinstance(node.ctx, ast.Load)
               for node in ast.walk(tree)):
            return True
    return False


def test_the_action_server_has_the_actions_the_domain_lists(domain):
    names = {cls().name() for cls in registered_actions()}
    assert names == custom_actions(domain)


def test_every_action_that_reads_the_domain_is_sent_it(domain):
    for cls in registered_actions():
        name = cls().name()
        assert reads_domain(cls) == domain.does_custom_action_explicitly_need_domain(name), name


class ReadsItsDomain(Action):
    def name(self):
        return "action_reads"

    def run(self, dispatcher, tracker, domain):
        return [] if domain.get("slots") else []


class IgnoresItsDomain(Action):
    def name(self):
        return "action_ignores"

    def run(self, dispatcher, tracker, domain):
        return []


def test_the_reading_check_tells_a_domain_read():
    assert reads_domain(ReadsItsDomain) and not reads_domain(IgnoresItsDomain)


@pytest.mark.parametrize("endpoints", ENDPOINTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_rasa_sends_the_domain_only_where_marked(endpoints, domain, monkeypatch):
    for name in re.findall(r"\$\{(\w+)\}", endpoints.read_text(encoding="utf-8")):
        monkeypatch.setenv(name, "0")
    monkeypatch.setenv("ACTION_ENDPOINT_URL", "http://127.0.0.1:1/webhook")
    endpoint = read_endpoint_config(str(endpoints), "action_endpoint")
    tracker = DialogueStateTracker.from_events("rest:zhangsan", [
        ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen"),
        UserUttered("查一下订单", {"name": "check_transaction", "confidence": 1.0})],
        domain.slots)
    sent = {name: "domain" in RemoteAction(name, endpoint)._action_call_format(tracker, domain)
            for name in custom_actions(domain)}
    assert sent == {name: domain.does_custom_action_explicitly_need_domain(name)
                    for name in custom_actions(domain)}
    assert sent["validate_transaction_form"] and not sent["action_check_transaction"]
