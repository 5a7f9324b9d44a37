"""The latency bench's CPU figures count a server's worker processes too."""

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import latency  # noqa: E402

BURN = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\ntime.sleep(30)"


def test_cpu_of_a_process_includes_its_children():
    # A parent that only waits, and a child (as a Sanic worker is) that burns 0.4 s.
    parent = subprocess.Popen(["sh", "-c", f"{sys.executable} -c '{BURN}'; sleep 30"])
    try:
        deadline = time.time() + 20
        while latency.cpu_seconds(parent.pid) < 0.35 and time.time() < deadline:
            time.sleep(0.1)
        total = latency.cpu_seconds(parent.pid)
        assert 0.35 <= total < 2.0
        assert latency.cpu_seconds(parent.pid) - total < 0.1  # the child now sleeps
    finally:
        subprocess.run(["pkill", "-P", str(parent.pid)])
        parent.kill()
        parent.wait()


def test_a_process_that_is_gone_costs_nothing():
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert latency.cpu_seconds(gone.pid) == 0.0


def test_cpu_is_split_by_kind_of_process():
    before = {1: ("Rasa", 1.0), 2: ("PostgreSQL", 0.5)}
    after = {1: ("Rasa", 3.0), 2: ("PostgreSQL", 0.75), 3: ("PostgreSQL", 0.25)}  # 3 is new
    assert latency.cpu_by_kind(before, after) == {"Rasa": 2.0, "PostgreSQL": 0.5}
    assert latency.process_kind("/x/python -m walletbot.server run actions --port 1") \
        == "action server"
    assert latency.process_kind("postgres: walletbot walletbot 127.0.0.1 idle") == "PostgreSQL"
