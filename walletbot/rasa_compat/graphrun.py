"""Rasa's model graphs run in a precomputed order instead of through dask.

Rasa 3.6 runs its inference graphs (the NLU parse of every message, the
prediction before every action) with ``dask.get``: each call computes the
minimal sub-graph of the targets again (a recursive walk of the schema), builds
a dask graph, has dask order it and runs it through dask's scheduler, only to
call a handful of nodes one after another in one thread. Under load that
machinery was about a tenth of the Rasa process's interpreter time, more than
the policies' own rule matching (bench/RESULTS.md, "dask").

Here ``DaskGraphRunner.run`` computes, once per (targets, input names), the
nodes the targets need in dependency order, and then calls them directly. The
semantics are dask's as Rasa uses them:

- a node is called with the outputs of its ``needs`` (node or input names), in
  the order of its ``needs``;
- an input is the tuple ``(name, value)`` (Rasa's ``_add_inputs_to_graph``), and
  replaces a node of the same name;
- an input whose value is a string naming a node is refused with Rasa's
  ``GraphRunError``; a ``RuntimeError`` while running becomes a
  ``GraphRunError`` too; any other exception propagates unchanged;
- only the nodes the targets need run, each once.

A target or a dependency that is neither a node nor an input (never so in a
trained model) is left to dask, as before.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, FrozenSet, List, Optional, Text, Tuple

logger = logging.getLogger(__name__)

_installed = False
# A plan: the nodes to call, in order, each with the names it needs.
Plan = Tuple[Tuple[Text, Any, Tuple[Text, ...]], ...]


def plan(nodes: Dict[Text, Any], needs: Dict[Text, Tuple[Text, ...]],
         targets: Tuple[Text, ...], inputs: FrozenSet[Text]) -> Optional[Plan]:
    """The nodes to call for ``targets``, dependencies first; None when a name is unknown.

    As with Rasa's runner, the nodes are those the targets need in the schema
    (Rasa's ``minimal_graph_schema``), less those an input replaces: dask runs
    every task of the graph it is given, so a node needed only by a replaced
    node still runs.
    """
    order: List[Text] = []
    done: set = set()
    for target in targets:
        # Iterative depth-first post-order: graphs are shallow, but no recursion limit either.
        stack: List[Tuple[Text, int]] = [(target, 0)]
        while stack:
            name, index = stack.pop()
            if name in done:
                continue
            if name not in nodes:
                if name not in inputs:
                    return None
                done.add(name)
                continue
            deps = needs[name]
            if index < len(deps):
                stack.append((name, index + 1))
                stack.append((deps[index], 0))
            else:
                done.add(name)
                order.append(name)
    return tuple((name, nodes[name], needs[name]) for name in order if name not in inputs)


def dask_run(runner: Any, inputs: Optional[Dict[Text, Any]] = None,
             targets: Optional[List[Text]] = None) -> Dict[Text, Any]:
    """Rasa's own ``DaskGraphRunner.run``, installed or not."""
    from rasa.engine.runner.dask import DaskGraphRunner

    original = getattr(DaskGraphRunner.run, "__wrapped__", DaskGraphRunner.run)
    return original(runner, inputs=inputs, targets=targets)


def run(runner: Any, inputs: Optional[Dict[Text, Any]] = None,
        targets: Optional[List[Text]] = None) -> Dict[Text, Any]:
    """``DaskGraphRunner.run`` without dask: same arguments, same results and errors."""
    from rasa.engine.exceptions import GraphRunError

    run_targets = tuple(targets if targets else runner._graph_schema.target_names)
    inputs = inputs or {}
    plans = runner.__dict__.setdefault("_walletbot_plans", {})
    key = (run_targets, frozenset(inputs))
    if key not in plans:
        needs = {name: tuple(node.needs.values())
                 for name, node in runner._graph_schema.nodes.items()}
        steps = plan(runner._instantiated_nodes, needs, run_targets, key[1])
        # Rasa refuses an input value naming a node of the targets' minimal schema only.
        minimal = None if steps is None else \
            set(runner._graph_schema.minimal_graph_schema(list(run_targets)).nodes)
        plans[key] = (steps, minimal)
    steps, minimal = plans[key]
    if steps is None:
        return dask_run(runner, inputs=inputs or None, targets=targets)
    for value in inputs.values():
        if isinstance(value, str) and value in minimal:
            raise GraphRunError(
                f"Input value '{value}' clashes with a node name. Make sure "
                f"that none of the input names passed to the `run` method are the "
                f"same as node names in the graph schema."
            )
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(f"Running graph with inputs: {inputs}, targets: {targets} "
                     f"and {runner._execution_context}.")
    results: Dict[Text, Any] = {name: (name, value) for name, value in inputs.items()}
    try:
        for name, node, deps in steps:
            results[name] = node(*[results[dep] for dep in deps])
    except RuntimeError as error:
        raise GraphRunError("Error running runner.") from error
    return dict(results[target] for target in run_targets)


def install() -> None:
    """Replaces ``DaskGraphRunner.run`` with ``run`` (idempotent)."""
    global _installed
    if _installed:
        return
    from rasa.engine.runner.dask import DaskGraphRunner

    def planned_run(self: Any, inputs: Optional[Dict[Text, Any]] = None,
                    targets: Optional[List[Text]] = None) -> Dict[Text, Any]:
        return run(self, inputs=inputs, targets=targets)

    planned_run.__wrapped__ = DaskGraphRunner.run  # type: ignore[attr-defined]
    DaskGraphRunner.run = planned_run  # type: ignore[assignment]
    _installed = True
