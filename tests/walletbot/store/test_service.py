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
