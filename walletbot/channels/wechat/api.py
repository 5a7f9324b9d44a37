"""Client of WeChat's customer-service message API (客服消息), async (aiohttp).

Used when an answer misses the 5-second window of a passive reply, for the
parts of a long answer, and by the agent desk to reach WeChat users.

The ``access_token`` is fetched with the app id and secret, cached until
shortly before it expires, and fetched again when WeChat says it is invalid
or expired (``40001``, ``42001``, ``40014``); the call is then retried once.
Other errors (``45015``: the user has not written within 48 hours, ``45047``:
too many messages, network errors) are logged and reported as ``False``,
never raised into the bot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Callable, Dict, Optional, Tuple

import aiohttp

from walletbot.channels.wechat.format import split_text

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.weixin.qq.com"
# WeChat error codes that mean "fetch a new access_token".
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# Refresh this many seconds before WeChat's stated expiry.
EXPIRY_MARGIN = 300.0


class WeChatApiError(Exception):
    """WeChat answered with a non-zero ``errcode``."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatApiClient:
    """Sends customer-service messages to WeChat users."""

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        base_url: str = DEFAULT_API_BASE,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        session_factory: Optional[Callable[[], aiohttp.ClientSession]] = None,
    ) -> None:
        """Creates a client.

        Args:
            app_id: the Official Account's AppID.
            app_secret: its AppSecret.
            base_url: WeChat's API base URL (tests point it at a local fake).
            timeout: seconds one HTTP call may take.
            clock: monotonic clock for the token's expiry (tests pass a fake one).
            session_factory: makes the aiohttp session of each call.
        """
        self.app_id = app_id
        self.app_secret = app_secret
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._clock = clock
        self._session_factory = session_factory or self._default_session
        self._token: Optional[str] = None
        self._token_expires = 0.0
        self._lock: Optional[Tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = None

    def _default_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))

    def _token_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock[0] is not loop:
            self._lock = (loop, asyncio.Lock())
        return self._lock[1]

    def invalidate_token(self) -> None:
        """Forgets the cached access_token."""
        self._token = None
        self._token_expires = 0.0

    async def access_token(self, *, rejected: Optional[str] = None) -> str:
        """The cached access_token; fetched if missing, expiring or ``rejected``.

        Args:
            rejected: a token WeChat just refused; a newer cached one is reused,
                otherwise a new one is fetched.

        Raises:
            WeChatApiError: WeChat refused the app id / secret.
            aiohttp.ClientError, asyncio.TimeoutError: the API was unreachable.
        """
        async with self._token_lock():
            token = self._token
            if token and token != rejected and self._clock() < self._token_expires:
                return token
            data = await self._request(
                "GET",
                "/cgi-bin/token",
                params={
                    "grant_type": "client_credential",
                    "appid": self.app_id,
                    "secret": self.app_secret,
                },
            )
            token = data.get("access_token")
            if not token:
                raise WeChatApiError(-1, "no access_token in the answer")
            expires_in = float(data.get("expires_in") or 7200)
            self._token = str(token)
            self._token_expires = self._clock() + max(expires_in - EXPIRY_MARGIN, 60.0)
            return self._token

    async def _request(
        self, method: str, path: str, *, params: Dict[str, str], body: Any = None
    ) -> Dict[str, Any]:
        data = None
        headers = {}
        if body is not None:
            # WeChat wants UTF-8 text, not \\u escapes.
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json; charset=utf-8"
        async with self._session_factory() as session:
            async with session.request(
                method, self.base_url + path, params=params, data=data, headers=headers
            ) as response:
                response.raise_for_status()
                answer = await response.json(content_type=None)
        if not isinstance(answer, dict):
            raise WeChatApiError(-1, "answer is not a JSON object")
        errcode = int(answer.get("errcode") or 0)
        if errcode:
            raise WeChatApiError(errcode, str(answer.get("errmsg", "")))
        return answer

    async def call(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        """POSTs ``body`` to an API ``path`` with the access_token.

        A token error refreshes the token and retries once.

        Raises:
            WeChatApiError: WeChat refused the call.
            aiohttp.ClientError, asyncio.TimeoutError: the API was unreachable.
        """
        token = await self.access_token()
        try:
            return await self._request("POST", path, params={"access_token": token}, body=body)
        except WeChatApiError as error:
            if error.errcode not in TOKEN_ERRORS:
                raise
            logger.info("WeChat access_token rejected (%s); fetching a new one", error.errcode)
            token = await self.access_token(rejected=token)
            return await self._request("POST", path, params={"access_token": token}, body=body)

    async def send_text(self, openid: str, text: str) -> bool:
        """Sends ``text`` to ``openid``, split into WeChat-sized messages.

        Returns:
            ``True`` if every part was accepted; failures are logged, not raised.
        """
        ok = True
        for part in split_text(text):
            ok = await self._send_part(openid, part) and ok
        return ok

    async def _send_part(self, openid: str, text: str) -> bool:
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        try:
            await self.call("/cgi-bin/message/custom/send", body)
            return True
        except WeChatApiError as error:
            # 45015: the user has not written within 48 hours; 45047: too many.
            logger.warning("WeChat customer-service message not sent: %s", error)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            # Not the error's repr: it carries the request URL, access_token included.
            logger.warning("WeChat API unreachable, message not sent: %s %s", type(error).__name__,
                           getattr(error, "status", ""))
        except Exception:  # never crash the bot over a lost message
            logger.exception("WeChat customer-service message failed")
        return False
