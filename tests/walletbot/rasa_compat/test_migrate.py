"""Stored conversations move to channel-scoped ids once, taking the channel from their messages."""

import json

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore

from walletbot.rasa_compat.migrate import main, scope_conversation_ids


def _add(conn, sender, type_name, **data):
    conn.execute(SQLTrackerStore.SQLEvent.__table__.insert().values(
        sender_id=sender, type_name=type_name, timestamp=1.0, data=json.dumps(data)))


def _senders(engine):
    with engine.connect() as conn:
        return sorted({row[0] for row in conn.execute(sa.text("SELECT sender_id FROM events"))})


def test_old_ids_move_to_their_channel_and_scoped_ones_stay(tmp_path):
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    engine = sa.create_engine(url)
    SQLTrackerStore.Base.metadata.create_all(engine)
    with engine.begin() as conn:
        _add(conn, "oOPENID", "action", name="action_listen")
        _add(conn, "oOPENID", "user", text="你好", input_channel="wechat")
        _add(conn, "web-0a1b", "user", text="你好", input_channel="web")
        _add(conn, "zhangsan", "user", text="你好", input_channel="rest")
        _add(conn, "shell-user", "user", text="你好", input_channel="cmdline")
        _add(conn, "rest:already", "user", text="你好", input_channel="rest")
        _add(conn, "dup", "user", text="旧的", input_channel="rest")
        _add(conn, "rest:dup", "user", text="新的", input_channel="rest")
    moved = scope_conversation_ids(engine)
    assert moved == {"oOPENID": "wechat:oOPENID", "web-0a1b": "web:web-0a1b",
                     "zhangsan": "rest:zhangsan", "shell-user": "rest:shell-user"}
    assert _senders(engine) == ["dup", "rest:already", "rest:dup", "rest:shell-user",
                                "rest:zhangsan", "web:web-0a1b", "wechat:oOPENID"]
    with engine.connect() as conn:
        count = conn.execute(sa.text(
            "SELECT count(*) FROM events WHERE sender_id = 'wechat:oOPENID'")).scalar_one()
    assert count == 2  # every event of the conversation moved
    assert scope_conversation_ids(engine) == {}  # idempotent
    engine.dispose()
    assert main([url]) == 0
    assert main([f"sqlite:///{tmp_path / 'none.db'}"]) == 0
