"""Moving stored conversations to channel-scoped ids (``wechat:<openid>``…).

Trackers stored before conversation ids carried their channel are keyed by
the bare sender id. This rewrites the ``sender_id`` of Rasa's ``events`` table
once, taking the channel from the conversation's own user events (the
``input_channel`` Rasa stored with each message). Idempotent: scoped ids are
left alone. Run it once after upgrading, before the servers start
(``scripts/prod/bootstrap.py`` does; ``python -m walletbot.rasa_compat.migrate``
runs it on ``TRACKER_DB_URL``).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Dict, List, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from walletbot.conversation import SEPARATOR, ConversationId

logger = logging.getLogger(__name__)

# Rasa input channel names of the stored messages -> our channels.
_CHANNELS = {"web": "web", "socketio": "web", "wechat": "wechat", "rest": "rest"}


def _channel_of(conn: sa.engine.Connection, events: sa.Table, sender: str) -> str:
    rows = conn.execute(
        sa.select(events.c.data).where(events.c.sender_id == sender,
                                       events.c.type_name == "user").order_by(events.c.id)
    )
    for (data,) in rows:
        try:
            channel = _CHANNELS.get(json.loads(data).get("input_channel") or "")
        except (TypeError, ValueError, AttributeError):
            continue
        if channel:
            return channel
    return "web" if sender.startswith("web-") else "rest"


def scope_conversation_ids(engine: Engine) -> Dict[str, str]:
    """Rewrites unscoped conversation ids; returns ``{old: new}`` for what it moved.

    A conversation whose scoped id is already taken is left as it was (and
    logged) rather than mixed into another one.
    """
    events = sa.Table("events", sa.MetaData(), autoload_with=engine)
    moved: Dict[str, str] = {}
    with engine.begin() as conn:
        senders: List[str] = [
            row[0] for row in conn.execute(
                sa.select(events.c.sender_id).distinct()
                .where(~events.c.sender_id.contains(SEPARATOR)))
        ]
        for sender in senders:
            new = str(ConversationId(_channel_of(conn, events, sender), sender))
            taken = conn.execute(sa.select(sa.func.count()).select_from(events)
                                 .where(events.c.sender_id == new)).scalar_one()
            if taken:
                logger.warning("not moving conversation %r: %r exists already", sender, new)
                continue
            conn.execute(events.update().where(events.c.sender_id == sender)
                         .values(sender_id=new))
            moved[sender] = new
    return moved


def main(argv: Optional[List[str]] = None) -> int:
    from walletbot import settings

    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else settings.current().tracker_db_url
    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table("events"):
            print("no tracker store yet: nothing to move")
            return 0
        moved = scope_conversation_ids(engine)
    finally:
        engine.dispose()
    print(f"moved {len(moved)} conversation(s) to channel-scoped ids")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
