"""Follower-facing text, in Simplified Chinese by default, overridable per account.

Each key is an account setting (domain/account_settings.py): ``welcome`` and ``default_reply``
by their names, the others as ``text.KEY`` (``bankwx account set main text.help '...'``), kept
in the account's ``settings["texts"]``.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULTS: dict[str, str] = {
    "welcome": "欢迎关注！回复“帮助”查看可用服务，或点击下方菜单办理业务。",
    "default_reply": "您好，我们已收到您的消息。回复“帮助”查看可用服务，或回复“人工”联系客服。",
    "transfer_agent": "正在为您转接人工客服，请稍候。",
    "late_answer_prefix": "",
    "help": "可用服务：余额查询、交易明细、信用卡账单、网点查询、人工客服。",
    "agent_queued": "您前面还有 {ahead} 位客户，预计等待约 {minutes} 分钟，请稍候。",
    "agent_away": "人工客服暂时不在，请稍后再试，或回复“帮助”查看自助服务。",
    "agent_ended": "已为您结束人工服务，感谢您的耐心。",
    "agent_timeout": "当前咨询人数较多，暂时无法为您接通人工客服，请稍后再试。",
    "agent_idle": "由于长时间未收到您的消息，本次人工服务已结束。如需帮助，请回复“人工”。",
    "agent_rating": "请您对本次服务进行评价：",
    "agent_thanks": "感谢您的评价，我们会继续努力！",
    "backend_busy": "系统繁忙，请稍后再试",
    "bind_link": "您尚未绑定银行卡，请点击链接完成绑定：{url}",
    "bind_done": "您已绑定尾号{card}的银行卡。如需更换，请先回复“解绑”。",
    "unbind_done": "已解除与尾号{card}银行卡的绑定。",
    "unbind_none": "您尚未绑定银行卡，无需解绑。",
    "card_bill_none": "您名下暂无信用卡账单。",
    "alert_settings_show": "您的提醒设置：\n已关闭的提醒：{off}\n最低提醒金额：{amount}\n"
    "免打扰时段：{quiet}\n回复“关闭提醒 类型”“开启提醒 类型”“提醒金额 金额”“免打扰 22:00-07:00”"
    "或“关闭免打扰”修改设置。",
    "alert_settings_unset": "未设置",
    "alert_settings_usage": "未能识别您的设置。可回复：提醒设置、关闭提醒 类型、开启提醒 类型、"
    "提醒金额 金额（元，0为取消）、免打扰 22:00-07:00、关闭免打扰。",
    "alert_label_missing": "请在“{command}”后加上提醒类型，如“{command} 交易提醒”。",
    "alert_off_done": "已关闭“{label}”提醒。回复“开启提醒 {label}”可重新开启。",
    "alert_on_done": "已开启“{label}”提醒。",
    "alert_amount_done": "已设置最低提醒金额为{amount}，"
    "低于该金额的交易将不再提醒（安全提醒除外）。",
    "alert_amount_cleared": "已取消最低提醒金额，所有金额的交易都将提醒。",
    "alert_amount_invalid": "金额格式不正确，请回复如“提醒金额 100”，或“提醒金额 0”取消。",
    "alert_quiet_done": "已设置免打扰时段{quiet}（北京时间），"
    "期间的提醒将在免打扰结束后发送（安全提醒除外）。",
    "alert_quiet_cleared": "已关闭免打扰，提醒将即时发送。",
    "alert_quiet_invalid": "时段格式不正确，请回复如“免打扰 22:00-07:00”。",
    "location_ask": "请发送您的位置（点击输入框旁的“+”，选择“位置”），我们将为您查找最近的网点。",
    "location_bad": "无法识别您发送的位置，请重新发送您的位置。",
    "branches_none_near": "很抱歉，您附近{km}公里内没有找到网点。",
    "branches_nearest": "离您最近的网点：",
    "bind_confirmed": "您已成功绑定尾号{card}的银行卡，现在可以查询余额、交易明细和信用卡账单。",
}


def text(key: str, overrides: Mapping[str, str] | None = None) -> str:
    if overrides and overrides.get(key):
        return overrides[key]
    return DEFAULTS[key]
