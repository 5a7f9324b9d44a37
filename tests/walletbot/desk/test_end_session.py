"""The desk's "end session": an agent ends the user's web session (tokens, binding) for good."""

from walletbot.channels.web.channel import WebChatInput
from walletbot.conversation import ConversationId
from walletbot.store import tickets as ticket_queries

from tests.walletbot.desk.harness import call, client, login, make_desk, serve_desk, wallet_service

KEY = "a-test-web-key-that-is-32-bytes-long"


async def test_the_ticket_agent_ends_a_web_session_and_its_token_dies(tmp_path):
    wallet = wallet_service(tmp_path)
    unbound = []

    async def unbind(*, session_id):
        unbound.append(session_id)
        return True

    web = WebChatInput(jwt_key=KEY, unbind=unbind)

    async def on_new_message(_message):
        return None

    def add_web(app):
        app.blueprint(web.blueprint(on_new_message), url_prefix="/webhooks/web")
        app.ctx.web_chat = web

    session = "web-0123456789abcdef01234567"
    token = web.issue_token(session_id=session, user_id="U1001", name="张三")
    ticket, _ = await wallet.run(ticket_queries.open_ticket, channel="web", sender_id=session,
                                 user_id="U1001", category="request_human", priority=3,
                                 summary=None, transcript=[])
    rest_ticket, _ = await wallet.run(ticket_queries.open_ticket, channel="rest", sender_id="u",
                                      user_id=None, category="request_human", priority=3,
                                      summary=None, transcript=[])
    async with serve_desk(make_desk(wallet), extra_routes=add_web) as served:
        web_base = served.base.replace("/webhooks/desk", "/webhooks/web")
        async with client() as http:
            status, _, _ = await call(http, "GET", f"{web_base}/history", token=token)
            assert status == 200
            await login(http, served.base, "agent1")
            end = f"{served.base}/api/tickets/{ticket.ticket_id}/end-session"
            # Only the agent who holds the ticket may end the session.
            assert (await call(http, "POST", end, body={}))[0] == 409
            await call(http, "POST", f"{served.base}/api/tickets/{ticket.ticket_id}/claim", body={})
            status, body, _ = await call(http, "POST", end, body={})
            assert status == 200 and body["ok"], body
            assert (await call(http, "GET", f"{web_base}/history", token=token))[0] == 401
            assert unbound == [session]
            # A REST conversation has no web session to end.
            await call(http, "POST", f"{served.base}/api/tickets/{rest_ticket.ticket_id}/claim",
                       body={})
            other = f"{served.base}/api/tickets/{rest_ticket.ticket_id}/end-session"
            assert (await call(http, "POST", other, body={}))[0] == 400
    assert ticket.conversation == ConversationId("web", session)
