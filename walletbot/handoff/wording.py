"""What the handoff actions tell the user (Simplified Chinese).

Kept beside the code that fills in ticket numbers and queue places, like the
transaction wording, so every domain response stays used by a rule or story.
"""

ACCOUNT_FROZEN = "已为您冻结账户，账户目前无法付款、转账和提现。"
FREEZE_NEEDS_IDENTITY = "我暂时无法确认您的身份，不能在这里直接冻结账户。已为您加急转接人工客服，客服核实身份后会立即为您冻结。"
HANDOFF_QUEUED = "已为您转接人工客服，工单号 {ticket}。您前面还有 {ahead} 位用户在等待，预计等待约 {minutes} 分钟，客服接入后会直接在这里回复您。等待期间您可以继续留言描述问题，请勿发送密码、验证码或完整卡号。"
HANDOFF_NEXT = "已为您转接人工客服，工单号 {ticket}。您是下一位，预计等待约 {minutes} 分钟，客服接入后会直接在这里回复您。等待期间您可以继续留言描述问题，请勿发送密码、验证码或完整卡号。"
HANDOFF_ASSIGNED = "您的工单 {ticket} 已有客服在处理，请直接在这里留言。"
HANDOFF_CLOSED = "现在不在人工客服服务时间（{hours}）。已为您登记工单 {ticket}，客服将于{opens}起按顺序回复您。您可以现在留言描述问题，客服上线后会第一时间查看。"
HANDOFF_UNAVAILABLE = "抱歉，人工客服转接系统暂时无法访问，请稍后再试，或通过OK钱包APP“客服中心”的在线客服联系我们。"
CSAT_THANKS = "感谢您的评价！还有其他可以帮您的吗？"
CSAT_SORRY = "感谢您的评价，很抱歉这次没能让您满意，我们会认真改进。如问题仍未解决，可以随时回复“转人工”。"
ASK_CSAT_AGAIN = "请回复1到5之间的数字为本次服务打分（5分为非常满意）。"
