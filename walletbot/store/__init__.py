"""The wallet database: tables, typed rows and keyword-only queries.

Build the engine at start-up (never at import time)::

    from walletbot.store import make_engine, init_db, get_transaction

    engine = make_engine()     # WALLET_DB_URL, default sqlite:///var/wallet.db
    init_db(engine)            # creates the tables; idempotent
    seed_demo(engine)          # dev and tests only: the demo users and orders
    with engine.begin() as conn:
        tx = get_transaction(conn=conn, order_id="WD202611180002", user_id="U1001")
"""

from walletbot.store.db import DEFAULT_URL, init_db, make_engine, seed_demo, wallet_db_url
from walletbot.store.queries import (
    MAX_RECENT,
    bind_sender,
    get_transaction,
    get_user,
    get_user_for_sender,
    recent_transactions,
    set_frozen,
)
from walletbot.store.rows import (
    CHANNELS,
    TX_STATUSES,
    TX_TYPES,
    Channel,
    Transaction,
    TxStatus,
    TxType,
    User,
)
from walletbot.store.schema import bindings, metadata, transactions, users

__all__ = [
    "CHANNELS",
    "Channel",
    "DEFAULT_URL",
    "MAX_RECENT",
    "TX_STATUSES",
    "TX_TYPES",
    "Transaction",
    "TxStatus",
    "TxType",
    "User",
    "bind_sender",
    "bindings",
    "get_transaction",
    "get_user",
    "get_user_for_sender",
    "init_db",
    "seed_demo",
    "make_engine",
    "metadata",
    "recent_transactions",
    "set_frozen",
    "transactions",
    "users",
    "wallet_db_url",
]
