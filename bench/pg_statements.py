"""PostgreSQL statements per WeChat message through the production profile, by role.

Starts the production profile as bench/latency.py --prod does, sends
``--messages`` WeChat messages from one bound user (an FAQ question and a
transaction lookup alternating), with PostgreSQL logging every statement
(``ALTER SYSTEM SET log_statement = 'all'``) only while they run, and prints
the statements per message, grouped by database role (``rasa``: the tracker
store, ``wallet``: the wallet DB) and by statement with literals blanked.

    . scripts/env.sh && .venv/bin/python bench/pg_statements.py [--messages 20]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import (  # noqa: E402  (bench/ is not a package)
    FAQ_MESSAGE, LOOKUP_MESSAGE, WeChatAccount, start_prod, wechat_request)


async def send(stack, account: WeChatAccount, count: int, first_id: int) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for n in range(count):
            text = (FAQ_MESSAGE, LOOKUP_MESSAGE)[n % 2]
            url, body = wechat_request(stack.nginx, "o_prod_1_0.0", text, first_id + n, account)
            async with session.post(url, data=body) as response:
                await response.text()
                if response.status != 200:
                    raise SystemExit(f"message {n}: HTTP {response.status}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    import sqlalchemy as sa

    stack = start_prod([1], 20)
    try:
        env = stack.env
        account = WeChatAccount(env["WECHAT_TOKEN"], env["WECHAT_AES_KEY"], env["WECHAT_APP_ID"])
        socket = stack.folder / "data" / "pg-socket"
        admin = sa.create_engine(
            f"postgresql+psycopg2://postgres@/postgres?host={socket}&port={stack.ports['postgres']}",
            isolation_level="AUTOCOMMIT")
        asyncio.run(send(stack, account, 4, 1000))  # warm-up: pools, kept trackers
        with admin.connect() as conn:
            conn.execute(sa.text("ALTER SYSTEM SET log_statement = 'all'"))
            conn.execute(sa.text("ALTER SYSTEM SET log_line_prefix = '%u|'"))
            conn.execute(sa.text("SELECT pg_reload_conf()"))
        time.sleep(1)
        mark = stack.log.stat().st_size
        asyncio.run(send(stack, account, args.messages, 5000))
        time.sleep(1)
        with admin.connect() as conn:
            conn.execute(sa.text("ALTER SYSTEM RESET log_statement"))
            conn.execute(sa.text("ALTER SYSTEM RESET log_line_prefix"))
            conn.execute(sa.text("SELECT pg_reload_conf()"))
        admin.dispose()
        text = stack.log.read_bytes()[mark:].decode(errors="replace")
    finally:
        stack.stop()
    kinds: collections.Counter = collections.Counter()
    for line in text.splitlines():
        prefix, found, statement = line.partition("statement: ")
        if not found:
            continue
        role = prefix.rsplit("|", 1)[0].split()[-1] if "|" in prefix else "?"
        if role == "postgres":
            continue  # this script's own ALTER SYSTEM
        statement = re.sub(r"\b\d+(\.\d+)?\b", "N", re.sub(r"'[^']*'", "?", statement.strip()))
        kinds[(role, statement[:110])] += 1
    total = sum(kinds.values())
    print(f"{total} statements for {args.messages} messages: {total / args.messages:.1f} a message\n")
    print("| a message | role | statement |\n|---|---|---|")
    for (role, statement), count in kinds.most_common():
        print(f"| {count / args.messages:.2f} | {role} | `{statement}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
