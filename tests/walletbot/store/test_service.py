"""The wallet-DB gateway: tables on first use, demo data only outside production."""

import sqlalchemy as sa

from walletbot.store.db import make_engine
from walletbot.store.schema import bindings, transactions, users
from walletbot.store.service import WalletService


def _counts(service):
    engine = service._engine_ready()
    with engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                     for t in (users, bindings, transactions))


def test_the_production_profile_seeds_no_demo_data(tmp_path, monkeypatch):
    monkeypatch.setenv("WALLETBOT_ENV", "production")
    url = f"sqlite:///{tmp_path / 'wallet.db'}"
    service = WalletService(engine_factory=lambda: make_engine(url))
    assert _counts(service) == (0, 0, 0)


def test_dev_seeds_the_demo_users_and_orders(tmp_path, monkeypatch):
    monkeypatch.setenv("WALLETBOT_ENV", "dev")
    url = f"sqlite:///{tmp_path / 'wallet.db'}"
    assert _counts(WalletService(engine_factory=lambda: make_engine(url))) == (2, 6, 7)
    assert _counts(WalletService(engine_factory=lambda: make_engine(url), demo=False)) == (2, 6, 7)


async def test_bind_goes_through_the_gateway(tmp_path):
    url = f"sqlite:///{tmp_path / 'wallet.db'}"
    service = WalletService(engine_factory=lambda: make_engine(url), demo=True)
    await service.bind(channel="web", sender_id="web-0a1b", user_id="U1002")
    user = await service.user_for(channel="web", sender_id="web-0a1b")
    assert user is not None and user.user_id == "U1002"


async def test_a_read_on_postgresql_is_one_statement(pg_server):
    """Counted by the server: no BEGIN, COMMIT or pre-use check around the SELECT."""
    url = pg_server.logged_url()
    service = WalletService(engine_factory=lambda: make_engine(url), demo=True)
    await service.user_for(channel="rest", sender_id="zhangsan")  # tables, demo data, pool
    start = pg_server.log_offset()
    user = await service.user_for(channel="rest", sender_id="zhangsan")
    order = await service.transaction(user_id=user.user_id, order_id="WD202611180002")
    statements = pg_server.statements_since(start)
    assert order is not None and order.order_id == "WD202611180002"
    assert [s.split()[0] for s in statements] == ["SELECT", "SELECT"], statements
    service._engine.dispose()


async def test_a_read_survives_the_server_closing_the_pooled_connections(pg_server):
    """As after a database restart: every pooled connection is gone; the read still answers."""
    url = sa.engine.make_url(pg_server.new_url()).update_query_dict(
        {"application_name": "walletbot-read-test"}).render_as_string(hide_password=False)
    service = WalletService(engine_factory=lambda: make_engine(url), demo=True)
    await service.user_for(channel="rest", sender_id="zhangsan")
    admin = sa.create_engine(pg_server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'walletbot-read-test'")).scalar_one()
    admin.dispose()
    assert killed >= 1
    user = await service.user_for(channel="rest", sender_id="zhangsan")
    assert user is not None and user.user_id == "U1001"
    service._engine.dispose()
