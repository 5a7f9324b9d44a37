"""CPU time of one NLU parse and one action prediction: Rasa's dask runner against
walletbot's precomputed order (walletbot/rasa_compat/graphrun.py), side by side.

    . scripts/env.sh && .venv/bin/python bench/graph_runner.py [--repeat 400]

Both runners are called on the same loaded model, the same message and the same
tracker (a 20-turn conversation), alternating call by call so that the
machine's speed changes hit both alike. Reported: the median and p90 of the
process CPU time per call (``time.process_time``) and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MESSAGES = ["怎么充值", "查一下订单 TX20240101", "提现多久到账", "转人工", "我的卡被盗刷了"]


def conversation(processor: Any, turns: int) -> Any:
    from rasa.core.channels import UserMessage
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker = DialogueStateTracker("bench", processor.domain.slots)
    tracker.update(ActionExecuted("action_listen"))
    for turn in range(turns):
        text = MESSAGES[turn % len(MESSAGES)]
        parsed = asyncio.run(processor.parse_message(UserMessage(text, sender_id="bench")))
        tracker.update(UserUttered(text, parsed["intent"], parsed["entities"], parsed))
        tracker.update(ActionExecuted("utter_default"))
        tracker.update(BotUttered("好的"))
        tracker.update(ActionExecuted("action_listen"))
    return tracker


def cpu_ms(call: Callable[[], Any]) -> float:
    start = time.process_time()
    call()
    return (time.process_time() - start) * 1000


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=400, help="calls per runner and target")
    parser.add_argument("--model", default=str(ROOT / "models" / "walletbot.tar.gz"))
    args = parser.parse_args(argv)

    from rasa.core.agent import Agent
    from rasa.core.channels import UserMessage

    from walletbot.rasa_compat import graphrun

    agent = Agent.load(args.model)
    processor = agent.processor
    graph = processor.graph_runner
    nlu, core = processor.model_metadata.nlu_target, processor.model_metadata.core_target
    tracker = conversation(processor, 20)
    message = UserMessage("查一下我昨天的充值到账了没有", sender_id="bench")
    calls: Dict[str, Dict[str, Callable[[], Any]]] = {
        "NLU parse": {
            "dask": lambda: graphrun.dask_run(graph, inputs={"__message__": [message],
                                                             "__tracker__": tracker},
                                              targets=[nlu]),
            "planned": lambda: graphrun.run(graph, inputs={"__message__": [message],
                                                           "__tracker__": tracker},
                                            targets=[nlu]),
        },
        "action prediction": {
            "dask": lambda: graphrun.dask_run(graph, inputs={"__tracker__": tracker},
                                              targets=[core]),
            "planned": lambda: graphrun.run(graph, inputs={"__tracker__": tracker},
                                            targets=[core]),
        },
    }
    print("| call | runner | median CPU ms | p90 CPU ms | planned / dask (median) |")
    print("|---|---|---|---|---|")
    for name, runners in calls.items():
        for call in runners.values():  # warm-up: lazily built parts, the plan
            for _ in range(20):
                call()
        times: Dict[str, List[float]] = {runner: [] for runner in runners}
        for _ in range(args.repeat):
            for runner, call in runners.items():
                times[runner].append(cpu_ms(call))
        medians = {runner: statistics.median(t) for runner, t in times.items()}
        for runner, t in times.items():
            p90 = statistics.quantiles(t, n=10)[-1]
            ratio = f"{medians['planned'] / medians['dask']:.2f}" if runner == "planned" else ""
            print(f"| {name} | {runner} | {medians[runner]:.2f} | {p90:.2f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
