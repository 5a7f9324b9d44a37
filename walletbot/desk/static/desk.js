// Agent desk. Polls the queue and the open ticket every 2 s; all text goes in
// with textContent, never as HTML. Feature scripts (desk_*.js, loaded after
// this one) use window.Desk: its helpers, and hooks called after each render.
(function () {
  "use strict";
  if (document.body.classList.contains("login-page")) {
    if (document.body.getAttribute("data-failed") === "1") {
      document.getElementById("login-error").hidden = false;
    }
    return;
  }
  var PRIORITY = { 1: "紧急", 2: "高", 3: "普通" };
  var STATUS = { queued: "排队中", assigned: "处理中", resolved: "已结束" };
  var CATEGORY = { request_human: "用户要求人工", fallback: "机器人未能理解",
    account_compromised: "账户安全", complain: "投诉", transaction: "交易核查" };
  var CHANNEL = { web: "网页", wechat: "微信公众号", rest: "REST" };
  var me = null, selected = null, view = "open", lastTranscript = "";

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }
  function time(iso) { return iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : ""; }

  function api(path, body) {
    var opts = body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    };
    opts.credentials = "same-origin";
    return fetch("api/" + path, opts).then(function (r) {
      if (r.status === 401) { location.href = "login"; throw new Error("登录已过期"); }
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error(data.error || ("HTTP " + r.status)); }
        return data;
      });
    });
  }

  function notice(text) {
    var n = document.getElementById("d-notice");
    n.hidden = !text; n.textContent = text || "";
  }

  var hooks = { me: [], queue: [], detail: [] };
  function run(name, arg, extra) {
    hooks[name].forEach(function (fn) {
      try { fn(arg, extra); } catch (e) { if (window.console) { console.error(e); } }
    });
  }

  function renderQueue(tickets) {
    var list = document.getElementById("tickets");
    list.textContent = "";
    document.getElementById("no-tickets").hidden = tickets.length > 0;
    tickets.forEach(function (t) {
      var li = el("li");
      li.setAttribute("data-id", t.id);
      if (selected === t.id) { li.className = "selected"; }
      var line1 = el("div", "line1");
      line1.appendChild(el("span", null, t.number));
      line1.appendChild(el("span", "badge p" + t.priority, PRIORITY[t.priority]));
      li.appendChild(line1);
      li.appendChild(el("div", "summary", t.summary || "（无摘要）"));
      li.appendChild(el("div", "sub", (CATEGORY[t.category] || t.category) + " · " +
        (STATUS[t.status] || t.status) + (t.agent ? "（" + t.agent + "）" : "") + " · " + time(t.created_at)));
      li.addEventListener("click", function () { select(t.id); });
      list.appendChild(li);
    });
    run("queue", tickets, list);
  }

  function refreshQueue() {
    return api("tickets" + (view === "resolved" ? "?status=resolved" : ""))
      .then(function (d) { renderQueue(d.tickets); })
      .catch(function () {});
  }

  function renderDetail(t) {
    document.getElementById("placeholder").hidden = true;
    document.getElementById("detail").hidden = false;
    document.getElementById("d-number").textContent = "工单 " + t.number;
    document.getElementById("d-meta").textContent = [PRIORITY[t.priority] + "优先级",
      CATEGORY[t.category] || t.category, CHANNEL[t.channel] || t.channel,
      STATUS[t.status] + (t.agent ? "（" + t.agent + "）" : ""), "创建于 " + time(t.created_at)]
      .concat(t.csat ? ["满意度 " + t.csat + " 分"] : []).join(" · ");
    var mine = t.status === "assigned" && me && t.agent === me.login;
    document.getElementById("claim").disabled = t.status !== "queued";
    document.getElementById("resolve").disabled = !mine;
    document.getElementById("reply").disabled = !mine;
    document.getElementById("send").disabled = !mine;
    var user = document.getElementById("d-user");
    user.textContent = t.user_id ? (t.user_name || "") + "（" + t.user_id + "）" : "未绑定OK钱包账户的访客";
    var key = JSON.stringify(t.transcript);
    if (key !== lastTranscript) {
      lastTranscript = key;
      var box = document.getElementById("transcript");
      box.textContent = "";
      t.transcript.forEach(function (line) {
        var who = line.role === "user" ? "用户" : line.role === "agent" ? "客服 " + (line.agent || "") : "机器人";
        var div = el("div", "line " + line.role);
        div.appendChild(el("span", "who", who + " " + time(line.time)));
        div.appendChild(document.createTextNode(line.text));
        box.appendChild(div);
      });
      box.scrollTop = box.scrollHeight;
    }
    var body = document.getElementById("txs");
    body.textContent = "";
    (t.transactions || []).forEach(function (x) {
      var tr = el("tr");
      [x.order_id, x.type, x.amount, x.status].forEach(function (v) { tr.appendChild(el("td", null, v)); });
      body.appendChild(tr);
    });
    if (!t.transactions || !t.transactions.length) {
      var tr = el("tr"); var td = el("td", null, "无"); td.colSpan = 4; tr.appendChild(td); body.appendChild(tr);
    }
    run("detail", t);
  }

  function refreshDetail() {
    if (selected === null) { return Promise.resolve(); }
    return api("tickets/" + selected).then(renderDetail).catch(function (e) { notice(e.message); });
  }

  function select(id) {
    selected = id; lastTranscript = ""; notice("");
    refreshDetail(); refreshQueue();
  }

  document.getElementById("claim").addEventListener("click", function () {
    api("tickets/" + selected + "/claim", {}).then(function () { notice(""); })
      .catch(function (e) { notice(e.message); }).then(function () { refreshDetail(); refreshQueue(); });
  });
  document.getElementById("resolve").addEventListener("click", function () {
    api("tickets/" + selected + "/resolve", {}).then(function () { notice("工单已结束，对话已交回机器人。"); })
      .catch(function (e) { notice(e.message); }).then(function () { refreshDetail(); refreshQueue(); });
  });
  var replyBox = document.getElementById("reply");
  function sendReply() {
    var text = replyBox.value.trim();
    if (!text) { return; }
    api("tickets/" + selected + "/reply", { text: text }).then(function () { replyBox.value = ""; })
      .catch(function (e) { notice(e.message); }).then(refreshDetail);
  }
  document.getElementById("reply-form").addEventListener("submit", function (e) { e.preventDefault(); sendReply(); });
  replyBox.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); sendReply(); }
  });
  Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (tab) {
    tab.addEventListener("click", function () {
      view = tab.getAttribute("data-status");
      Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (t) { t.classList.toggle("active", t === tab); });
      refreshQueue();
    });
  });
  document.getElementById("logout").addEventListener("click", function () {
    fetch("logout", { method: "POST", credentials: "same-origin" }).then(function () { location.href = "login"; });
  });

  window.Desk = {
    api: api, el: el, time: time, notice: notice, select: select,
    refreshQueue: refreshQueue, refreshDetail: refreshDetail,
    me: function () { return me; }, selected: function () { return selected; },
    view: function () { return view; },
    // Desk.on("me" | "queue" | "detail", fn): fn(me), fn(tickets, listElement), fn(ticket).
    // A "me" hook added after the agent is known runs at once.
    on: function (name, fn) {
      hooks[name].push(fn);
      if (name === "me" && me) { run1(fn, me); }
    }
  };
  function run1(fn, arg) {
    try { fn(arg); } catch (e) { if (window.console) { console.error(e); } }
  }

  function start() {
    api("me").then(function (m) {
      me = m;
      run("me", m);
      document.getElementById("me").textContent = "客服：" + m.name + "（" + m.login + "）";
      refreshQueue();
      setInterval(refreshQueue, 2000);
      setInterval(refreshDetail, 2000);
    });
  }
  // The feature scripts come after this one; while the browser fetches them,
  // a fast answer to api/me could otherwise run before they have hooked in.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
