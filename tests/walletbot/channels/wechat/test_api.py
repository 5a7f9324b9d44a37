"""The customer-service API client against a local fake WeChat API."""

import logging

from walletbot.channels.wechat.api import WeChatApiClient

from .doubles import APP_ID, APP_SECRET, free_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def client(fake_api, **kwargs) -> WeChatApiClient:
    return WeChatApiClient(APP_ID, APP_SECRET, fake_api.base_url, **kwargs)


async def test_token_is_fetched_once_and_cached(fake_api):
    api = client(fake_api)
    assert await api.send_text("o1", "第一条")
    assert await api.send_text("o1", "第二条")
    assert len(fake_api.token_requests) == 1
    request = fake_api.token_requests[0]
    assert request == {"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET}
    assert fake_api.delivered("o1") == ["第一条", "第二条"]
    assert fake_api.sends[0]["body"] == {"touser": "o1", "msgtype": "text", "text": {"content": "第一条"}}


async def test_token_is_refreshed_before_it_expires(fake_api):
    clock = FakeClock()
    fake_api.expires_in = 7200
    api = client(fake_api, clock=clock)
    await api.send_text("o1", "a")
    clock.now += 7200 - 299  # inside the 300 s safety margin
    await api.send_text("o1", "b")
    assert len(fake_api.token_requests) == 2
    assert [s["token"] for s in fake_api.sends] == ["token-1", "token-2"]


async def test_invalid_token_40001_is_refreshed_and_the_call_retried_once(fake_api):
    api = client(fake_api)
    await api.send_text("o1", "a")
    fake_api.send_errors = [40001]  # WeChat revoked the token (e.g. another server fetched one)
    assert await api.send_text("o1", "b")
    assert [s["token"] for s in fake_api.sends] == ["token-1", "token-1", "token-2"]
    assert fake_api.delivered("o1") == ["a", "b"]


async def test_expired_token_42001_is_refreshed(fake_api):
    api = client(fake_api)
    fake_api.send_errors = [42001]
    assert await api.send_text("o1", "过期后重发")
    assert fake_api.delivered() == ["过期后重发"]
    assert len(fake_api.token_requests) == 2


async def test_token_errors_twice_in_a_row_give_up(fake_api, caplog):
    api = client(fake_api)
    fake_api.send_errors = [40001, 40001]
    assert await api.send_text("o1", "x") is False
    assert len(fake_api.sends) == 2  # one retry, no loop


async def test_45015_is_logged_not_raised(fake_api, caplog):
    api = client(fake_api)
    fake_api.send_errors = [45015]
    with caplog.at_level(logging.WARNING):
        assert await api.send_text("o1", "超过48小时") is False
    assert "45015" in caplog.text
    assert await api.send_text("o1", "之后照常")  # the client still works


async def test_wrong_secret_is_logged_not_raised(fake_api, caplog):
    api = WeChatApiClient(APP_ID, "wrong", fake_api.base_url)
    with caplog.at_level(logging.WARNING):
        assert await api.send_text("o1", "x") is False
    assert "40013" in caplog.text
    assert fake_api.sends == []


async def test_unreachable_api_is_logged_not_raised(caplog):
    api = WeChatApiClient(APP_ID, APP_SECRET, f"http://127.0.0.1:{free_port()}", timeout=2)
    with caplog.at_level(logging.WARNING):
        assert await api.send_text("o1", "x") is False
    assert "unreachable" in caplog.text


async def test_long_texts_are_sent_in_parts(fake_api):
    api = client(fake_api)
    text = "\n".join("第%d段：" % i + "余额" * 100 for i in range(20))
    assert await api.send_text("o1", text)
    parts = fake_api.delivered("o1")
    assert len(parts) > 1 and "\n".join(parts) == text
    assert all(len(p.encode()) <= 2048 for p in parts)
