// Web chat page: socket.io to the bot, session kept in localStorage across
// reloads. Every text is inserted with textContent (never as HTML).
(function () {
  "use strict";
  var BASE = location.pathname.replace(/\/chat\/?$/, "");
  var STORE = "walletbot.web.session";
  var demoLogin = document.body.getAttribute("data-demo-login") === "true";
  var messages = document.getElementById("messages");
  var chips = document.getElementById("chips");
  var input = document.getElementById("input");
  var banner = document.getElementById("banner");
  var statusLine = document.getElementById("status");
  var socket = null;
  var session = null;

  function load() {
    try { return JSON.parse(localStorage.getItem(STORE)); } catch (e) { return null; }
  }
  function save(s) { localStorage.setItem(STORE, JSON.stringify(s)); }

  function add(role, text, who) {
    var div = document.createElement("div");
    div.className = "msg " + role;
    if (who) {
      var label = document.createElement("span");
      label.className = "who";
      label.textContent = who;
      div.appendChild(label);
    }
    div.appendChild(document.createTextNode(text));
    messages.appendChild(div);
    messages.scrollTop = messages.scrollHeight;
    return div;
  }

  function showChips(buttons) {
    chips.textContent = "";
    (buttons || []).forEach(function (b) {
      var chip = document.createElement("button");
      chip.type = "button";
      chip.className = "chip";
      chip.textContent = b.title;
      chip.addEventListener("click", function () { send(b.payload, b.title); });
      chips.appendChild(chip);
    });
  }

  function setBanner(state, agent) {
    if (state === "queued") {
      banner.hidden = false; banner.className = "banner";
      banner.textContent = "已转人工，正在排队等待客服接入…";
    } else if (state === "joined") {
      banner.hidden = false; banner.className = "banner live";
      banner.textContent = "人工客服" + (agent ? " " + agent : "") + " 已接入";
    } else {
      banner.hidden = true;
    }
  }

  function renderBot(data) {
    if (data.custom) {
      var c = data.custom;
      if (c.handoff) { setBanner(c.handoff, c.agent); }
      if (c.text) { add(c.role === "agent" ? "agent" : "bot", c.text, c.role === "agent" ? "人工客服 " + (c.agent || "") : null); }
      return;
    }
    if (data.text) { add("bot", data.text); }
    if (data.quick_replies && data.quick_replies.length) { showChips(data.quick_replies); }
    if (data.attachment && data.attachment.payload && data.attachment.payload.src) {
      add("bot", data.attachment.payload.src);
    }
  }

  function send(text, title) {
    text = (text || "").trim();
    if (!text || !socket || !socket.connected) { return; }
    add("user", title || text);
    showChips([]);
    socket.emit("user_uttered", title ? { message: text, title: title } : { message: text });
  }

  function showAccount() {
    var user = session && session.user;
    document.getElementById("who").textContent = user ? "已登录：" + user.name : "未登录（可咨询常见问题）";
    document.getElementById("logout").hidden = !user;
    ["zhangsan", "lisi"].forEach(function (u) {
      document.getElementById("login-" + u).hidden = !!user || !demoLogin;
    });
  }

  function newSession(user) {
    return fetch(BASE + "/token", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: user || null })
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error(body.error || ("HTTP " + r.status)); }
        session = { token: body.token, user: body.user };
        save(session);
        return session;
      });
    });
  }

  function loadHistory() {
    return fetch(BASE + "/history", { headers: { Authorization: "Bearer " + session.token } })
      .then(function (r) { return r.ok ? r.json() : { messages: [] }; })
      .then(function (body) {
        messages.textContent = "";
        var last = null;
        body.messages.forEach(function (m) {
          add(m.role, m.text, m.role === "agent" ? "人工客服 " + (m.agent || "") : null);
          last = m;
        });
        showChips(last && last.role === "bot" ? last.buttons : []);
        setBanner(body.paused ? "queued" : null);
        if (!body.messages.length) {
          add("bot", "您好，我是OK钱包智能客服。可以问我注册登录、充值、提现、账户安全等问题；登录后还能查询您的交易进度。");
        }
      });
  }

  function connect() {
    if (socket) { socket.disconnect(); }
    statusLine.textContent = "正在连接…";
    socket = io({ path: BASE + "/socket.io", auth: { token: session.token }, transports: ["websocket", "polling"] });
    socket.on("connect", function () { statusLine.textContent = "已连接"; });
    socket.on("disconnect", function () { statusLine.textContent = "连接已断开，正在重连…"; });
    socket.on("connect_error", function () {
      // An expired or foreign token: start a fresh anonymous session once.
      statusLine.textContent = "会话已过期，正在重新连接…";
      socket.disconnect();
      newSession(null).then(start).catch(function () { statusLine.textContent = "连接失败，请稍后刷新重试"; });
    });
    socket.on("bot_uttered", renderBot);
  }

  function start() {
    showAccount();
    return loadHistory().then(connect);
  }

  document.getElementById("composer").addEventListener("submit", function (e) {
    e.preventDefault();
    send(input.value);
    input.value = "";
  });
  ["zhangsan", "lisi"].forEach(function (u) {
    document.getElementById("login-" + u).addEventListener("click", function () {
      newSession(u).then(start).catch(function (err) { add("system", "登录失败：" + err.message); });
    });
  });
  document.getElementById("logout").addEventListener("click", function () {
    newSession(null).then(start);
  });

  session = load();
  (session && session.token ? Promise.resolve(session) : newSession(null))
    .then(start)
    .catch(function () { statusLine.textContent = "连接失败，请稍后刷新重试"; });
})();
