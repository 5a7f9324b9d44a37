"""Graphs run in a precomputed order give what Rasa's dask runner gives."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import given, settings, strategies as st

from walletbot.rasa_compat import graphrun


class Node:
    """A graph node as Rasa's ``GraphNode`` behaves: returns (name, output)."""

    def __init__(self, name: str, calls: List[str], fail: Optional[type] = None) -> None:
        self.name, self.calls, self.fail = name, calls, fail

    def __call__(self, *inputs: Tuple[str, Any]) -> Tuple[str, Any]:
        self.calls.append(self.name)
        if self.fail is not None:
            raise self.fail(f"{self.name} failed")
        return self.name, (self.name, [value for _, value in inputs])


def runner(needs: Dict[str, List[str]], targets: List[str],
           fail: Optional[Dict[str, type]] = None) -> Tuple[Any, List[str]]:
    """A real ``DaskGraphRunner`` over callable nodes (no model storage needed)."""
    from rasa.engine.graph import GraphSchema, SchemaNode
    from rasa.engine.runner.dask import DaskGraphRunner

    calls: List[str] = []
    schema = GraphSchema({
        name: SchemaNode(needs={f"p{i}": dep for i, dep in enumerate(deps)}, uses=object,
                         constructor_name="create", fn="run", config={},
                         is_target=name in targets)
        for name, deps in needs.items()
    })
    graph = object.__new__(DaskGraphRunner)
    graph._graph_schema = schema
    graph._instantiated_nodes = {name: Node(name, calls, (fail or {}).get(name))
                                 for name in needs}
    graph._execution_context = None
    return graph, calls


def outcome(function: Any, graph: Any, calls: List[str], **kwargs: Any) -> Tuple[Any, List[str]]:
    """The result and the nodes called; on an error, the error only.

    Which other nodes ran before a node failed depends on the order, which
    dask chooses its own way; what the caller gets is the same.
    """
    calls.clear()
    try:
        result: Any = function(graph, **kwargs)
    except Exception as error:  # noqa: BLE001 - the error is the outcome compared
        return (type(error).__name__, str(error)), None
    return result, sorted(calls)


@st.composite
def graphs(draw: Any) -> Tuple[Dict[str, List[str]], List[str], Dict[str, Any], Dict[str, type]]:
    size = draw(st.integers(1, 8))
    names = [f"n{i}" for i in range(size)]
    inputs_pool = ["__message__", "__tracker__"]
    needs = {}
    for i, name in enumerate(names):
        # Only earlier nodes or inputs: a DAG, as every trained graph is.
        needs[name] = draw(st.lists(st.sampled_from(names[:i] + inputs_pool), max_size=3))
    targets = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    inputs = {name: draw(st.integers()) for name in
              draw(st.lists(st.sampled_from(inputs_pool + names), max_size=3, unique=True))}
    fail = {name: draw(st.sampled_from([RuntimeError, ValueError])) for name in
            draw(st.lists(st.sampled_from(names), max_size=1))}
    return needs, targets, inputs, fail


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_random_graphs_give_dasks_results_calls_and_errors(case: Any) -> None:
    needs, targets, inputs, fail = case
    graph, calls = runner(needs, targets, fail)
    for kwargs in ({"inputs": inputs, "targets": targets}, {"inputs": inputs}):
        assert outcome(graphrun.run, graph, calls, **kwargs) == \
            outcome(graphrun.dask_run, graph, calls, **kwargs)


def test_each_needed_node_runs_once_dependencies_first_and_no_other() -> None:
    needs = {"a": ["__tracker__"], "b": ["a"], "c": ["a", "b"], "unused": ["a"]}
    graph, calls = runner(needs, ["c"])
    result = graphrun.run(graph, inputs={"__tracker__": 7}, targets=["c"])
    assert calls == ["a", "b", "c"]
    assert result == {"c": ("c", [("a", [7]), ("b", [("a", [7])])])}
    # The plan is kept: a second run calls the same nodes again and nothing else.
    graphrun.run(graph, inputs={"__tracker__": 8}, targets=["c"])
    assert calls == ["a", "b", "c"] * 2


def test_an_input_replaces_the_node_of_its_name() -> None:
    graph, calls = runner({"a": [], "b": ["a"]}, ["b"])
    assert graphrun.run(graph, inputs={"a": 1}, targets=["b"]) == {"b": ("b", [1])}
    assert calls == ["b"]


def test_an_input_naming_a_node_is_refused_as_rasa_does() -> None:
    from rasa.engine.exceptions import GraphRunError

    graph, _ = runner({"a": [], "b": ["a"]}, ["b"])
    with pytest.raises(GraphRunError, match="clashes with a node name"):
        graphrun.run(graph, inputs={"__tracker__": "a"}, targets=["b"])


def test_an_input_naming_a_node_the_targets_do_not_need_is_accepted_as_rasa_does() -> None:
    graph, calls = runner({"a": [], "b": ["__tracker__"], "c": []}, ["b"])
    kwargs = {"inputs": {"__tracker__": "c"}, "targets": ["b"]}
    assert outcome(graphrun.run, graph, calls, **kwargs) == \
        outcome(graphrun.dask_run, graph, calls, **kwargs) == ({"b": ("b", ["c"])}, ["b"])


def test_an_unknown_target_is_left_to_dask() -> None:
    graph, _ = runner({"a": []}, ["a"])
    assert graphrun.plan({"a": object()}, {"a": ()}, ("x",), frozenset()) is None
    assert outcome(graphrun.run, graph, [], targets=["x"]) == \
        outcome(graphrun.dask_run, graph, [], targets=["x"])


def test_install_replaces_the_runner_and_keeps_the_original() -> None:
    from rasa.engine.runner.dask import DaskGraphRunner

    graphrun.install()
    graphrun.install()
    assert DaskGraphRunner.run.__wrapped__.__module__ == "rasa.engine.runner.dask"
    graph, calls = runner({"a": [], "b": ["a"]}, ["b"])
    assert graph.run(targets=["b"]) == graphrun.dask_run(graph, targets=["b"])


def test_the_models_parse_and_prediction_are_the_same_as_with_dask(agent: Any) -> None:
    from rasa.core.channels import UserMessage
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.nlu.constants import TEXT

    processor = agent.processor
    graph = processor.graph_runner
    nlu, core = processor.model_metadata.nlu_target, processor.model_metadata.core_target
    tracker = DialogueStateTracker("graphrun", processor.domain.slots)
    tracker.update(ActionExecuted("action_listen"))
    for text in ["你好", "怎么充值", "查一下订单 TX20240101", "我的卡被盗刷了，快帮我冻结", "转人工"]:
        message = UserMessage(text, sender_id="graphrun")
        inputs = {"__message__": [message], "__tracker__": tracker}
        mine = graphrun.run(graph, inputs=inputs, targets=[nlu])[nlu][0]
        theirs = graphrun.dask_run(graph, inputs=inputs, targets=[nlu])[nlu][0]
        assert mine.get(TEXT) == text
        assert mine.as_dict() == theirs.as_dict()
        parsed = asyncio.run(processor.parse_message(message))
        tracker.update(UserUttered(text, parsed["intent"], parsed["entities"], parsed))
        mine = graphrun.run(graph, inputs={"__tracker__": tracker}, targets=[core])[core]
        theirs = graphrun.dask_run(graph, inputs={"__tracker__": tracker}, targets=[core])[core]
        assert (mine.policy_name, mine.probabilities, mine.events, mine.is_end_to_end_prediction) \
            == (theirs.policy_name, theirs.probabilities, theirs.events,
                theirs.is_end_to_end_prediction)
        action = processor.domain.action_names_or_texts[
            max(range(len(mine.probabilities)), key=mine.probabilities.__getitem__)]
        tracker.update(ActionExecuted(action))
        tracker.update(ActionExecuted("action_listen"))
