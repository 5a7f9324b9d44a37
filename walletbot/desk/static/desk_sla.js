// Service levels on the console: overdue tickets are marked in the queue (the
// API already sorts them first), a fresh claim shows how long its agent has to
// reply, and an agent whose ticket the timer took back is told why (GET
// api/notices, polled). All text goes in with textContent.
(function () {
  "use strict";
  if (!window.Desk) { return; }
  var POLL_MS = 3000;
  var cursor = null, seen = {}, box = null;

  function overdueText(t) {
    var late = t.overdue_minutes >= 1 ? "已超时 " + t.overdue_minutes + " 分钟" : "已超时";
    return late + "（已排队 " + t.waited_minutes + " 分钟）";
  }

  function replyText(t) {
    return t.reply_due_minutes > 0 ? t.reply_due_minutes + " 分钟内未回复将退回队列" : "未回复，即将退回队列";
  }

  Desk.on("queue", function (tickets, list) {
    var byId = {};
    tickets.forEach(function (t) { byId[String(t.id)] = t; });
    Array.prototype.forEach.call(list.children, function (li) {
      var t = byId[li.getAttribute("data-id")];
      if (!t) { return; }
      if (t.overdue) {
        li.classList.add("sla-overdue");
        li.appendChild(Desk.el("div", "sla-label", overdueText(t)));
      } else if (t.reply_due_minutes !== null && t.reply_due_minutes !== undefined) {
        li.appendChild(Desk.el("div", "sla-due", replyText(t)));
      }
    });
  });

  function notices() {
    if (!box) {
      box = Desk.el("div", "sla-notices");
      box.id = "sla-notices";
      document.body.appendChild(box);
    }
    return box;
  }

  function show(n) {
    if (seen[n.id]) { return; }
    seen[n.id] = true;
    var item = Desk.el("div", "sla-notice");
    item.setAttribute("data-ticket", n.ticket_id);
    item.appendChild(Desk.el("span", "sla-notice-text", n.text));
    var close = Desk.el("button", "sla-notice-close", "知道了");
    close.type = "button";
    close.addEventListener("click", function () { item.remove(); });
    item.appendChild(close);
    notices().appendChild(item);
    if (Desk.selected() === n.ticket_id) { Desk.notice(n.text); }
  }

  function poll() {
    return Desk.api("notices" + (cursor === null ? "" : "?since=" + cursor)).then(function (d) {
      cursor = d.cursor;
      d.notices.forEach(show);
    }).catch(function () {});
  }

  Desk.on("me", function () {
    poll();
    setInterval(poll, POLL_MS);
  });
})();
