// Agents' tools: 转接 (transfer), internal notes, 解除冻结 (unfreeze), 接单/暂停接单.
// Uses window.Desk (desk.js). All text goes in with textContent.
(function () {
  "use strict";
  var Desk = window.Desk;
  if (!Desk) { return; }
  var el = Desk.el;
  var me = null, ticket = null, tools = null, lastNotes = "", loading = false;

  function byId(id) { return document.getElementById(id); }
  function isSupervisor() { return !!me && me.roles.indexOf("supervisor") >= 0; }
  function isSecurity() { return !!me && me.roles.indexOf("security") >= 0; }

  // --- header: 接单 / 暂停接单 -------------------------------------------------
  var header = byId("slot-header");
  var state = el("span", "availability-state", "");
  state.id = "availability-state";
  var toggle = el("button", "link", "暂停接单");
  toggle.type = "button"; toggle.id = "availability";
  header.appendChild(state); header.appendChild(toggle);
  var accepting = true;
  function showAvailability(on) {
    accepting = on;
    state.textContent = on ? "● 接单中" : "○ 已暂停接单";
    state.className = "availability-state " + (on ? "on" : "off");
    toggle.textContent = on ? "暂停接单" : "恢复接单";
  }
  toggle.addEventListener("click", function () {
    Desk.api("me/availability", { available: !accepting })
      .then(function (d) { showAvailability(d.available); })
      .catch(function (e) { Desk.notice(e.message); });
  });

  // --- actions: 转接, 解除冻结 ----------------------------------------------------
  var actions = byId("slot-actions");
  var transferBtn = el("button", "secondary", "转接");
  transferBtn.type = "button"; transferBtn.id = "transfer"; transferBtn.disabled = true;
  var unfreezeBtn = el("button", "danger", "解除冻结");
  unfreezeBtn.type = "button"; unfreezeBtn.id = "unfreeze"; unfreezeBtn.hidden = true;
  actions.appendChild(transferBtn); actions.appendChild(unfreezeBtn);

  function field(form, labelText, control) {
    var label = el("label", "tool-field", labelText);
    label.appendChild(control);
    form.appendChild(label);
  }
  function buttons(form, okId, okText, cancelId) {
    var row = el("div", "tool-buttons");
    var okBtn = el("button", null, okText); okBtn.type = "submit"; okBtn.id = okId;
    var cancel = el("button", "secondary", "取消"); cancel.type = "button"; cancel.id = cancelId;
    row.appendChild(okBtn); row.appendChild(cancel); form.appendChild(row);
    cancel.addEventListener("click", function () { form.hidden = true; });
  }

  var transferForm = el("form", "tool-form");
  transferForm.id = "transfer-form"; transferForm.hidden = true;
  transferForm.appendChild(el("div", "tool-title", "转接工单"));
  var transferTo = el("select"); transferTo.id = "transfer-to";
  field(transferForm, "转接给", transferTo);
  var transferReason = el("input"); transferReason.id = "transfer-reason";
  transferReason.maxLength = 200; transferReason.placeholder = "转接原因（必填，最多200字）";
  field(transferForm, "原因", transferReason);
  buttons(transferForm, "transfer-submit", "确认转接", "transfer-cancel");
  actions.appendChild(transferForm);

  var unfreezeForm = el("form", "tool-form");
  unfreezeForm.id = "unfreeze-form"; unfreezeForm.hidden = true;
  unfreezeForm.appendChild(el("div", "tool-title", "解除账户冻结"));
  unfreezeForm.appendChild(el("p", "tool-hint",
    "请先在对话中按所选方式核验用户身份。切勿向用户索要密码或验证码。"));
  var method = el("select"); method.id = "unfreeze-method";
  field(unfreezeForm, "核验方式", method);
  var confirmLabel = el("label", "tool-check");
  var confirmBox = el("input"); confirmBox.type = "checkbox"; confirmBox.id = "unfreeze-confirm";
  confirmLabel.appendChild(confirmBox);
  confirmLabel.appendChild(document.createTextNode("我已按上述方式核验，确认是账户本人"));
  unfreezeForm.appendChild(confirmLabel);
  buttons(unfreezeForm, "unfreeze-submit", "确认解除冻结", "unfreeze-cancel");
  actions.appendChild(unfreezeForm);

  function agentLabel(a) {
    var status = a.available ? "接单中" : (a.online ? "暂停接单" : "离线");
    return a.name + "（" + a.login + "）· " + a.load + "/" + a.cap + " · " + status;
  }

  transferBtn.addEventListener("click", function () {
    if (!ticket) { return; }
    unfreezeForm.hidden = true;
    Desk.api("agents").then(function (d) {
      transferTo.textContent = "";
      if (ticket.status === "assigned") {
        var queue = el("option", null, "退回队列"); queue.value = ""; transferTo.appendChild(queue);
      }
      d.agents.forEach(function (a) {
        if (ticket.status === "assigned" && a.login === ticket.agent) { return; }
        var o = el("option", null, agentLabel(a)); o.value = a.login; transferTo.appendChild(o);
      });
      transferReason.value = "";
      transferForm.hidden = false;
      transferReason.focus();
    }).catch(function (e) { Desk.notice(e.message); });
  });
  transferForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var id = Desk.selected();
    var to = transferTo.value || null;
    Desk.api("tickets/" + id + "/transfer", { to: to, reason: transferReason.value })
      .then(function () {
        transferForm.hidden = true;
        Desk.notice(to ? "工单已转接。" : "工单已退回队列。");
      })
      .catch(function (err) { Desk.notice(err.message); })
      .then(function () { Desk.refreshDetail(); Desk.refreshQueue(); });
  });

  unfreezeBtn.addEventListener("click", function () {
    if (!tools) { return; }
    transferForm.hidden = true;
    method.textContent = "";
    var blank = el("option", null, "请选择核验方式"); blank.value = ""; method.appendChild(blank);
    tools.checks.forEach(function (c) {
      var o = el("option", null, c.label); o.value = c.id; method.appendChild(o);
    });
    confirmBox.checked = false;
    unfreezeForm.hidden = false;
  });
  unfreezeForm.addEventListener("submit", function (e) {
    e.preventDefault();
    if (!ticket) { return; }
    Desk.api("tickets/" + ticket.id + "/unfreeze", {
      user_id: ticket.user_id, verification: method.value, confirmed: confirmBox.checked
    }).then(function () {
      unfreezeForm.hidden = true;
      Desk.notice("账户已解除冻结，已告知用户。");
    }).catch(function (err) { Desk.notice(err.message); })
      .then(function () { Desk.refreshDetail(); });
  });

  // --- above the reply box: who handed the ticket over, and why --------------------
  var banner = el("div", "handover");
  banner.id = "handover"; banner.hidden = true;
  var replySlot = byId("slot-reply");
  replySlot.insertBefore(banner, replySlot.firstChild);

  function showHandover() {
    var h = tools && tools.handover;
    var text = "";
    if (h && ticket) {
      var who = h.actor === "system" ? "系统" : (h.actor_name || h.actor);
      if (h.event === "transferred" && ticket.status === "assigned" && ticket.agent === h.target) {
        text = "由 " + who + " 转来：" + (h.reason || "");
      } else if (h.event === "requeued" && ticket.status === "queued" && h.reason) {
        text = who + " 退回队列：" + h.reason;
      } else if (h.event === "assigned" && ticket.status === "assigned" && ticket.agent === h.target) {
        text = "系统已自动分配给 " + (h.target_name || h.target);
      }
    }
    banner.hidden = !text;
    banner.textContent = text;
  }

  // --- side: internal notes -------------------------------------------------------
  var side = byId("slot-side");
  side.appendChild(el("h3", null, "内部备注（用户不可见）"));
  var list = el("ul", "notes"); list.id = "notes";
  side.appendChild(list);
  var noteForm = el("form", "note-form"); noteForm.id = "note-form";
  var noteText = el("textarea"); noteText.id = "note-text"; noteText.rows = 2;
  noteText.maxLength = 1000; noteText.placeholder = "仅客服可见，不会发送给用户";
  var noteAdd = el("button", "secondary", "添加备注"); noteAdd.type = "submit"; noteAdd.id = "note-add";
  noteForm.appendChild(noteText); noteForm.appendChild(noteAdd);
  side.appendChild(noteForm);

  function renderNotes(notes) {
    var key = JSON.stringify(notes);
    if (key === lastNotes) { return; }
    lastNotes = key;
    list.textContent = "";
    if (!notes.length) { list.appendChild(el("li", "empty", "暂无备注")); }
    notes.forEach(function (n) {
      var li = el("li", "note");
      li.appendChild(el("div", "note-who", (n.agent_name || n.agent) + " · " + Desk.time(n.at)));
      li.appendChild(el("div", "note-text", n.text));
      list.appendChild(li);
    });
  }
  noteForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = noteText.value.trim();
    if (!text || !ticket) { return; }
    Desk.api("tickets/" + ticket.id + "/notes", { text: text })
      .then(function () { noteText.value = ""; return refreshSide(); })
      .catch(function (err) { Desk.notice(err.message); });
  });

  // --- refresh with the 2-s detail render ------------------------------------------
  function applyButtons() {
    var open = ticket && ticket.status !== "resolved";
    var mine = ticket && ticket.status === "assigned" && me && ticket.agent === me.login;
    transferBtn.disabled = !(open && (mine || isSupervisor()));
    var frozen = !!(tools && tools.frozen);
    unfreezeBtn.hidden = !(isSecurity() && frozen);
    unfreezeBtn.disabled = !(tools && tools.can_unfreeze);
    unfreezeBtn.title = unfreezeBtn.disabled ? "请先认领该工单，并在对话中核验用户身份" : "";
    if (!frozen) { unfreezeForm.hidden = true; }
    if (!open) { transferForm.hidden = true; }
  }

  function refreshSide() {
    if (!ticket || loading) { return Promise.resolve(); }
    var id = ticket.id;
    loading = true;
    return Promise.all([Desk.api("tickets/" + id + "/tools"), Desk.api("tickets/" + id + "/notes")])
      .then(function (r) {
        if (!ticket || ticket.id !== id) { return; }
        tools = r[0];
        renderNotes(r[1].notes);
        applyButtons(); showHandover();
      })
      .catch(function () {})
      .then(function () { loading = false; });
  }

  Desk.on("me", function (m) {
    me = m;
    Desk.api("agents").then(function (d) {
      d.agents.forEach(function (a) { if (a.login === m.login) { showAvailability(a.accepting); } });
    }).catch(function () {});
  });
  Desk.on("detail", function (t) {
    if (!ticket || ticket.id !== t.id) {
      tools = null; lastNotes = "";
      transferForm.hidden = true; unfreezeForm.hidden = true; noteText.value = "";
    }
    ticket = t;
    applyButtons(); showHandover();
    refreshSide();
  });
})();
