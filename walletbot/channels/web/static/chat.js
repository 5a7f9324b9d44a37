// Web chat page: socket.io to the bot, session kept in localStorage across
// reloads. Every text is inserted with textContent (never as HTML).
// The server may end a session (logout elsewhere, an agent, expiry): it sends
// "session_end" and disconnects; an idle connection is closed the same way and
// comes back when the user sends the next message.
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
  var fresh = false;   // the session was just issued: a refusal now is final
  var idle = false;    // closed by the server for inactivity: the next message reconnects
  var pending = [];    // messages typed while reconnecting

  function load() {
    try { return JSON.parse(localStorage.getItem(STORE)); } catch (e) { return null; }
  }
  function save(s) { localStorage.setItem(STORE, JSON.stringify(s)); }
  function forget() { localStorage.removeItem(STORE); }

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
    if (!text || !socket) { return; }
    var message = title ? { message: text, title: title } : { message: text };
    if (!socket.connected) {
      if (!idle) { return; }
      // Back after an idle disconnect: redraw what was said meanwhile (an agent
      // may have written), then send this message on the new connection.
      idle = false;
      pending.push(message);
      var show = function () { add("user", title || text); showChips([]); connect(); };
      loadHistory().then(show, show);
      return;
    }
    add("user", title || text);
    showChips([]);
    socket.emit("user_uttered", message);
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
        fresh = true;
        save(session);
        return session;
      });
    });
  }

  function loadHistory() {
    return fetch(BASE + "/history", { headers: { Authorization: "Bearer " + session.token } })
      .then(function (r) {
        if (r.status === 401) { var e = new Error("会话已失效"); e.expired = true; throw e; }
        return r.ok ? r.json() : { messages: [] };
      })
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
    idle = false;
    statusLine.textContent = "正在连接…";
    var current = io({ path: BASE + "/socket.io", auth: { token: session.token },
                       transports: ["websocket", "polling"] });
    socket = current;
    current.on("connect", function () {
      fresh = false;
      statusLine.textContent = "已连接";
      while (pending.length) { current.emit("user_uttered", pending.shift()); }
    });
    current.on("disconnect", function (reason) {
      if (reason === "io client disconnect") { return; }
      if (reason === "io server disconnect") {
        // Closed by the server (see "session_end"); no automatic reconnect.
        if (current === socket && !idle) { statusLine.textContent = "连接已断开，请刷新页面"; }
        return;
      }
      statusLine.textContent = "连接已断开，正在重连…";
    });
    current.on("session_end", function (data) {
      if (current !== socket) { return; }
      var reason = data && data.reason;
      if (reason === "idle") {
        idle = true;
        statusLine.textContent = "长时间未操作，连接已断开；发送消息即可重新连接";
        return;
      }
      var user = session && session.user;
      var note = reason === "expired" ? (user ? "登录已过期，请重新登录" : "会话已过期，已为您开始新的会话")
        : reason === "logout" ? "您已在其他页面退出登录"
        : "本次会话已结束";
      restart(note);
    });
    current.on("connect_error", function (err) {
      if (current !== socket) { return; }
      var reason = err && err.data && err.data.reason;
      if (!reason) {  // the network or the server is down: socket.io retries by itself
        statusLine.textContent = "连接已断开，正在重连…";
        return;
      }
      if (reason === "unavailable") {
        statusLine.textContent = "服务暂时不可用，正在重试…";
        setTimeout(function () { if (current === socket) { connect(); } }, 5000);
        return;
      }
      if (reason === "too_many") {
        statusLine.textContent = "当前网络打开的聊天窗口过多，请关闭部分页面后刷新重试";
        return;
      }
      // An expired, revoked or foreign token: a fresh anonymous session, once.
      if (fresh) { statusLine.textContent = "连接失败，请稍后刷新重试"; return; }
      restart(session && session.user ? "登录已失效，请重新登录" : null);
    });
    current.on("bot_uttered", renderBot);
  }

  function start() {
    showAccount();
    return loadHistory().then(connect, function (err) {
      if (err && err.expired && !fresh) {
        return restart(session && session.user ? "登录已过期，请重新登录" : null);
      }
      throw err;
    });
  }

  // Drops this session (already over on the server) and starts an anonymous one.
  function restart(note) {
    if (socket) { var old = socket; socket = null; old.disconnect(); }
    forget();
    pending = [];
    return newSession(null).then(start).then(function () {
      if (note) { add("system", note); }
    }).catch(function (err) {
      statusLine.textContent = "连接失败：" + (err && err.message ? err.message : "请稍后刷新重试");
    });
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
    var token = session && session.token;
    if (socket) { var old = socket; socket = null; old.disconnect(); }
    forget();
    // The server revokes the token and unbinds the session; a new anonymous one follows.
    fetch(BASE + "/logout", { method: "POST", headers: { Authorization: "Bearer " + token } })
      .catch(function () { return null; })
      .then(function () { return restart("您已退出登录"); });
  });

  session = load();
  (session && session.token ? Promise.resolve(session) : newSession(null))
    .then(start)
    .catch(function () { statusLine.textContent = "连接失败，请稍后刷新重试"; });
})();
