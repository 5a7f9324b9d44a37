"""A model swap (``PUT /model``) frees the old model, with the heap frozen for serving again.

In-process: Rasa's own HTTP server (``rasa.server.create_app``) loads the
model at start-up as ``rasa run`` does, then gets ``PUT /model``; the old
agent must be gone once the new one is in service. Out of process (slow): a
real server started through the entry point loads the model three times;
its resident memory must stay flat.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import urllib.error
import urllib.request
import weakref
from pathlib import Path

import aiohttp
import pytest

from walletbot.rasa_compat import perf

from tests.e2e.processes import Stack
from tests.prod.conftest import free_ports

TOKEN = "model-swap-token"


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.fixture
def cyclic_models(monkeypatch):
    """Every loaded model refers back to its agent.

    The current model's objects are almost all freed by reference counting,
    frozen or not; a model whose objects refer to each other (TensorFlow's
    do) is freed only by the cyclic collector, which skips frozen objects.
    This makes the test fail if the old model is still frozen, or still
    referenced, when the heap is collected.
    """
    from rasa.core.agent import Agent

    original = Agent.load_model

    def load_model(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.processor.walletbot_test_agent = self

    monkeypatch.setattr(Agent, "load_model", load_model)


@pytest.fixture
async def rasa_server(trained_model, unfrozen, cyclic_models):
    """Rasa's HTTP API in this process; the model loaded at start-up as by `rasa run`."""
    import rasa.core.run
    import rasa.server
    from rasa.core.utils import AvailableEndpoints

    perf.install()
    app = rasa.server.create_app(auth_token=TOKEN)
    app.register_listener(functools.partial(rasa.core.run.load_agent_on_start,
                                            str(trained_model), AvailableEndpoints(), None),
                          "before_server_start")
    port = free_ports(1)[0]
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True,
                                     access_log=False)
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()


async def test_after_a_swap_the_old_agent_is_freed_and_the_new_heap_frozen(rasa_server,
                                                                           trained_model):
    app, base = rasa_server
    await asyncio.sleep(0)
    assert app.ctx.agent.is_ready()
    assert gc.get_freeze_count() > 0  # frozen after the start-up load
    old_agent = weakref.ref(app.ctx.agent)
    old_processor = weakref.ref(app.ctx.agent.processor)

    async with aiohttp.ClientSession() as session:
        async with session.put(f"{base}/model?token={TOKEN}",
                               json={"model_file": str(trained_model)}) as response:
            assert response.status == 204, await response.text()
        # Served after the freeze callback (one event loop): the swap is complete.
        async with session.get(f"{base}/status?token={TOKEN}") as response:
            assert response.status == 200

    assert app.ctx.agent.is_ready()
    assert old_agent() is None, "the replaced agent is still alive"
    assert old_processor() is None, "the replaced agent's processor is still alive"
    assert gc.get_freeze_count() > 0, "the heap is not frozen after the swap"


async def test_a_failed_swap_keeps_the_old_agent_frozen_in_service(rasa_server, tmp_path):
    app, base = rasa_server
    await asyncio.sleep(0)
    in_service = app.ctx.agent
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{base}/model?token={TOKEN}",
                               json={"model_file": str(tmp_path / "missing.tar.gz")}) as response:
            assert response.status == 400
        async with session.get(f"{base}/status?token={TOKEN}") as response:
            assert response.status == 200
    assert app.ctx.agent is in_service
    assert gc.get_freeze_count() > 0


# --- a real server, through the entry point -----------------------------------


def vmrss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def api(stack: Stack, method: str, path: str, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{stack.base}{path}?token={stack.env['RASA_AUTH_TOKEN']}", data=data, method=method,
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.slow
def test_three_swaps_on_a_real_server_keep_its_memory_flat(trained_model, tmp_path):
    rasa_port, action_port = free_ports(2)
    stack = Stack(trained_model, tmp_path / "var", rasa_port, action_port)
    try:
        stack.start_rasa()  # python -m walletbot.server run ... --enable-api
        cmdline = Path(f"/proc/{stack.rasa.pid}/cmdline").read_bytes().split(b"\0")
        assert b"walletbot.server" in cmdline
        rss = []
        for _ in range(3):
            status, body = api(stack, "PUT", "/model", {"model_file": str(trained_model)})
            assert status == 204, body
            # Answered after the freeze callback has run (one event loop).
            status, body = api(stack, "GET", "/status")
            assert status == 200 and json.loads(body)["model_file"], body
            rss.append(vmrss_kb(stack.rasa.pid))
        print(f"VmRSS after each load: {rss} kB")
        assert rss[2] <= rss[0] * 1.10, f"VmRSS grew from {rss[0]} to {rss[2]} kB over two swaps"
        status, body = api(stack, "POST", "/model/parse", {"text": "提现多久到账"})
        assert status == 200 and json.loads(body)["intent"]["name"], body
    finally:
        stack.stop()
