// Canned replies (快捷回复). A picker opened by its button in #slot-reply, or by
// typing "/" at the start of the reply box: "/tx" filters by shortcut, title and
// tags; arrow keys and Enter (or a click) insert the reply, filled in on the
// server for the open ticket (GET api/canned?ticket=<id>); Esc closes it.
// While the picker is open it owns Enter and the arrows: its keydown listener runs
// in the capture phase on the document, before desk.js's (which sends on Enter).
(function () {
  "use strict";
  var Desk = window.Desk;
  var replyBox = document.getElementById("reply");
  var slot = document.getElementById("slot-reply");
  if (!Desk || !replyBox || !slot) { return; }
  var SLASH = /^\/(\S*)$/;

  var box = Desk.el("div", "canned");
  var button = Desk.el("button", "secondary canned-open", "快捷回复");
  button.type = "button";
  button.id = "canned-open";
  button.title = "插入快捷回复（也可以在回复框开头输入 / ）";
  var picker = Desk.el("div", "canned-picker");
  picker.id = "canned-picker";
  picker.hidden = true;
  var filter = Desk.el("input", "canned-filter");
  filter.id = "canned-filter";
  filter.type = "text";
  filter.placeholder = "搜索快捷回复（快捷码、标题或标签）";
  filter.setAttribute("autocomplete", "off");
  var list = Desk.el("ul", "canned-list");
  list.id = "canned-list";
  list.setAttribute("role", "listbox");
  var empty = Desk.el("p", "canned-empty", "");
  empty.hidden = true;
  picker.appendChild(filter);
  picker.appendChild(list);
  picker.appendChild(empty);
  box.appendChild(button);
  box.appendChild(picker);
  slot.appendChild(box);

  var replies = null, repliesFor = null, loading = null;
  // mode: null (closed), "slash" (filtered by the reply box), "button" (own filter box).
  var mode = null, shown = [], active = 0, dismissed = false;

  function load(ticketId) {
    if (repliesFor === ticketId && replies) { return Promise.resolve(replies); }
    if (loading && loading.id === ticketId) { return loading.promise; }
    var promise = Desk.api("canned?ticket=" + encodeURIComponent(ticketId)).then(function (d) {
      if (Desk.selected() === ticketId) { replies = d.replies; repliesFor = ticketId; }
      return d.replies;
    });
    loading = { id: ticketId, promise: promise };
    promise.catch(function () {}).then(function () { if (loading && loading.promise === promise) { loading = null; } });
    return promise;
  }

  function matches(reply, query) {
    if (!query) { return 0; }
    var q = query.toLowerCase();
    if (reply.shortcut.indexOf(q) === 0) { return 0; }
    if (reply.shortcut.indexOf(q) > 0) { return 1; }
    var words = [reply.title].concat(reply.tags || []);
    for (var i = 0; i < words.length; i++) {
      if (words[i].toLowerCase().indexOf(q) >= 0) { return 2; }
    }
    return -1;
  }

  function query() {
    if (mode === "slash") {
      var m = SLASH.exec(replyBox.value);
      return m ? m[1] : "";
    }
    return filter.value.trim();
  }

  function render() {
    list.textContent = "";
    if (!replies) {
      empty.hidden = false; empty.textContent = "正在加载快捷回复…";
      return;
    }
    var q = query();
    shown = replies.map(function (r, i) { return { reply: r, rank: matches(r, q), order: i }; })
      .filter(function (x) { return x.rank >= 0; })
      .sort(function (a, b) { return a.rank - b.rank || a.order - b.order; })
      .map(function (x) { return x.reply; });
    if (active >= shown.length) { active = Math.max(0, shown.length - 1); }
    empty.hidden = shown.length > 0;
    empty.textContent = shown.length ? "" : "没有匹配“" + q + "”的快捷回复";
    shown.forEach(function (r, i) {
      var li = Desk.el("li", i === active ? "active" : null);
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", i === active ? "true" : "false");
      li.setAttribute("data-shortcut", r.shortcut);
      var head = Desk.el("div", "canned-head");
      head.appendChild(Desk.el("span", "canned-shortcut", "/" + r.shortcut));
      head.appendChild(Desk.el("span", "canned-title", r.title));
      if (r.unfilled) { head.appendChild(Desk.el("span", "canned-warn", "含待配置内容")); }
      li.appendChild(head);
      li.appendChild(Desk.el("div", "canned-text", r.text));
      // mousedown, not click: the reply box keeps its focus (and its caret).
      li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(r); });
      li.addEventListener("mousemove", function () {
        if (active !== i) { active = i; render(); }
      });
      list.appendChild(li);
    });
    var current = list.children[active];
    if (current && current.scrollIntoView) { current.scrollIntoView({ block: "nearest" }); }
  }

  function open(how) {
    var id = Desk.selected();
    if (id === null || replyBox.disabled) { return; }
    mode = how; active = 0;
    picker.hidden = false;
    filter.hidden = how !== "button";
    if (how === "button") { filter.value = ""; filter.focus(); }
    render();
    load(id).then(function () { if (mode) { render(); } })
      .catch(function (e) { if (mode) { empty.hidden = false; empty.textContent = e.message; } });
  }

  function close() {
    mode = null; picker.hidden = true; shown = [];
  }

  function choose(reply) {
    var how = mode;
    close();
    var text = reply.text;
    if (how === "slash") {
      replyBox.value = text;
      replyBox.setSelectionRange(text.length, text.length);
    } else {
      var start = replyBox.selectionStart || 0, end = replyBox.selectionEnd || 0;
      var value = replyBox.value;
      replyBox.value = value.slice(0, start) + text + value.slice(end);
      replyBox.setSelectionRange(start + text.length, start + text.length);
    }
    replyBox.focus();
    Desk.notice(reply.unfilled ? "这条快捷回复含有【待配置】内容，请替换为实际信息后再发送。" : "");
  }

  function move(step) {
    if (!shown.length) { return; }
    active = (active + step + shown.length) % shown.length;
    render();
  }

  // Capture phase on the document: runs before the reply box's own listeners.
  document.addEventListener("keydown", function (e) {
    if (!mode || (e.target !== replyBox && e.target !== filter)) { return; }
    var handled = true;
    if (e.key === "ArrowDown") { move(1); }
    else if (e.key === "ArrowUp") { move(-1); }
    else if ((e.key === "Enter" && !e.shiftKey) || e.key === "Tab") {
      if (shown[active]) { choose(shown[active]); } else if (e.key === "Tab") { close(); }
    } else if (e.key === "Escape") {
      dismissed = mode === "slash";
      close();
      replyBox.focus();
    } else { handled = false; }
    if (handled) { e.preventDefault(); e.stopPropagation(); }
  }, true);

  replyBox.addEventListener("input", function () {
    var slash = SLASH.test(replyBox.value);
    if (!slash) { dismissed = false; }
    if (slash && !dismissed) {
      if (mode !== "slash") { open("slash"); } else { active = 0; render(); }
    } else if (mode === "slash") {
      close();
    }
  });
  filter.addEventListener("input", function () { active = 0; render(); });
  filter.addEventListener("blur", function () {
    setTimeout(function () { if (mode === "button" && document.activeElement !== filter) { close(); } }, 150);
  });
  replyBox.addEventListener("blur", function () {
    setTimeout(function () { if (mode === "slash" && document.activeElement !== replyBox) { close(); } }, 150);
  });
  button.addEventListener("click", function () {
    if (mode) { close(); replyBox.focus(); } else { open("button"); }
  });

  var lastTicket = null;
  Desk.on("detail", function (t) {
    if (t.id !== lastTicket) {
      lastTicket = t.id; replies = null; repliesFor = null; close();
    }
    button.disabled = replyBox.disabled;
    if (replyBox.disabled && mode) { close(); }
    // Fetched ahead while the ticket is the agent's, so "/" opens a full list at once.
    if (!replyBox.disabled && !replies) { load(t.id).catch(function () {}); }
  });
})();
