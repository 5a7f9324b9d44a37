// New-ticket notification. On each queue poll, a queued ticket this page has not
// seen before gets a browser notification (clicking it focuses the desk and opens
// the ticket) and a short beep (WebAudio: no media file). The title counts the
// queued tickets: "(3) 客服工作台 · OK钱包". The first poll after loading only
// learns what is already there. 新工单提醒 is switched per agent (remembered in
// localStorage under the agent's login); the browser's permission is asked only
// when the agent switches it on, since browsers refuse prompts without a click.
(function () {
  "use strict";
  var Desk = window.Desk;
  var slot = document.getElementById("slot-header");
  if (!Desk || !slot) { return; }
  var PRIORITY = { 1: "紧急", 2: "高", 3: "普通" };
  var CATEGORY = { request_human: "用户要求人工", fallback: "机器人未能理解",
    account_compromised: "账户安全", complain: "投诉", transaction: "交易核查" };
  var MAX_SHOWN = 3;
  var plainTitle = document.title;
  var enabled = false, storageKey = null, seen = null, audio = null, toggle = null;

  function supported() { return typeof window.Notification === "function"; }

  function remember(on) {
    try { window.localStorage.setItem(storageKey, on ? "on" : "off"); } catch (e) { /* private mode */ }
  }
  function remembered() {
    try { return window.localStorage.getItem(storageKey) === "on"; } catch (e) { return false; }
  }

  function renderToggle() {
    toggle.textContent = "新工单提醒：" + (enabled ? "开" : "关");
    toggle.setAttribute("aria-pressed", enabled ? "true" : "false");
    var blocked = enabled && (!supported() || window.Notification.permission !== "granted");
    toggle.title = blocked ? "浏览器未允许通知：新工单只有提示音和标题计数" :
      "新工单到达时弹出浏览器通知并播放提示音";
  }

  // Browsers start audio only after a user gesture: made (or resumed) on a click.
  function unlockAudio() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return null; }
    try {
      if (!audio) { audio = new Context(); }
      if (audio.state === "suspended" && audio.resume) { audio.resume().catch(function () {}); }
    } catch (e) { return null; }
    return audio;
  }

  function beep() {
    var context = audio || unlockAudio();
    if (!context) { return; }
    try {
      var oscillator = context.createOscillator(), gain = context.createGain();
      var now = context.currentTime;
      oscillator.type = "sine";
      oscillator.frequency.setValueAtTime(880, now);
      gain.gain.setValueAtTime(0.0001, now);
      gain.gain.exponentialRampToValueAtTime(0.2, now + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.35);
      oscillator.connect(gain);
      gain.connect(context.destination);
      oscillator.start(now);
      oscillator.stop(now + 0.4);
    } catch (e) { /* no sound is no reason to miss the notification */ }
  }

  function show(title, body, tag, ticketId) {
    if (!supported() || window.Notification.permission !== "granted") { return; }
    try {
      var note = new window.Notification(title, { body: body, tag: tag, lang: "zh-CN" });
      note.onclick = function () {
        window.focus();
        if (ticketId !== null) { Desk.select(ticketId); }
        note.close();
      };
    } catch (e) { /* e.g. a browser that only notifies from a service worker */ }
  }

  function announce(tickets) {
    beep();
    tickets.slice(0, MAX_SHOWN).forEach(function (t) {
      show("新的待处理工单 " + t.number,
        (CATEGORY[t.category] || t.category) + " · " + (PRIORITY[t.priority] || "") + "优先级",
        "desk-ticket-" + t.id, t.id);
    });
    if (tickets.length > MAX_SHOWN) {
      show("另有 " + (tickets.length - MAX_SHOWN) + " 个新的待处理工单", "请在客服工作台查看",
        "desk-ticket-more", null);
    }
  }

  function updateTitle(count) {
    document.title = count > 0 ? "(" + count + ") 客服工作台 · OK钱包" : plainTitle;
  }

  function process(tickets) {
    var queued = tickets.filter(function (t) { return t.status === "queued"; });
    updateTitle(queued.length);
    if (seen === null) {  // the first poll: what was already waiting is not news
      seen = {};
      queued.forEach(function (t) { seen[t.id] = true; });
      return;
    }
    var fresh = queued.filter(function (t) { return !seen[t.id]; });
    fresh.forEach(function (t) { seen[t.id] = true; });
    if (fresh.length && enabled) { announce(fresh); }
  }

  Desk.on("queue", function (tickets) {
    if (Desk.view() === "open") { process(tickets); return; }
    // The resolved tab is on screen: the open queue is still what counts.
    Desk.api("tickets").then(function (d) { process(d.tickets); }).catch(function () {});
  });

  Desk.on("me", function (me) {
    storageKey = "desk.notify." + me.login;
    enabled = remembered();
    toggle = Desk.el("button", "link notify-toggle");
    toggle.type = "button";
    toggle.id = "notify-toggle";
    toggle.style.marginLeft = "6px";  // the header slot holds other features' buttons too
    toggle.addEventListener("click", function () {
      enabled = !enabled;
      remember(enabled);
      if (enabled) {
        unlockAudio();
        if (supported() && window.Notification.permission === "default") {
          var asked = window.Notification.requestPermission(renderToggle);
          if (asked && asked.then) { asked.then(renderToggle, renderToggle); }
        }
      }
      renderToggle();
    });
    renderToggle();
    slot.appendChild(toggle);
    document.addEventListener("pointerdown", function () {
      if (enabled && (!audio || audio.state === "suspended")) { unlockAudio(); }
    }, true);
  });
})();
