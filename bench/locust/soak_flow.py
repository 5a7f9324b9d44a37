"""The texts of the soak's conversations, shared by the locustfile and bench/soak.py's checks.

Standard library only (the locust venv and the project's both import it).
"""

# What the desk's agent writes; the user waits for the first in the
# customer-service API's deliveries and answers it.
AGENT_REPLIES = ("您好，正在为您核查这笔提现，请稍候。",
                 "已核实：这笔提现正在处理，预计今天内到账。还有问题可以随时联系我们。")
USER_WAITING = "我的提现一直没到账，麻烦帮我看看"
USER_TO_AGENT = "好的，谢谢"
# The satisfaction answers: a numbered option of the question (1 = 5分) or typed.
CSAT_ANSWERS = ("1", "5分", "4分 满意", "2")

# How the bot's side reads (walletbot/desk/relay.py, domain.yml, walletbot/handoff/wording.py).
AGENT_PREFIX = "【人工客服"          # an agent's message through the customer-service API
JOIN_MARK = "已为您接入"              # the agent's automatic greeting on claiming
CSAT_PROMPT = "打分"                  # utter_handoff_resolved, said on resolve
CSAT_THANKS = "感谢您的评价"          # after a score
TICKET_MARK = "工单号"                # the handoff's answer
