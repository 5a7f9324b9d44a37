// Supervisor dashboard (dashboard.html): the figures of api/dashboard?days=1|7
// as cards, plain SVG charts and a table. No library: the desk's CSP allows
// scripts and styles from 'self' only. Every text goes in with textContent.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var REASONS = { fallback: "未能理解", low_confidence: "低置信度" };
  var days = 7;

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }
  function svgEl(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }
  function set(id, text) { $(id).textContent = text; }

  // From the counts, not the rounded rate: 5 of 11 is 45.5%, as Python's format says.
  function percent(part, whole) { return whole ? (part * 100 / whole).toFixed(1) + "%" : "—"; }
  // 45秒, 2分30秒, 5分钟, 1小时5分
  function duration(seconds) {
    if (seconds === null || seconds === undefined) { return "—"; }
    var s = Math.round(seconds);
    if (s < 60) { return s + "秒"; }
    if (s < 3600) { return Math.floor(s / 60) + (s % 60 ? "分" + (s % 60) + "秒" : "分钟"); }
    var h = Math.floor(s / 3600), m = Math.round((s % 3600) / 60);
    return h + "小时" + (m ? m + "分" : "");
  }
  function shortDate(iso) { var p = iso.split("-"); return Number(p[1]) + "月" + Number(p[2]) + "日"; }

  function api(path) {
    return fetch("api/" + path, { credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) { location.href = "login"; throw new Error("登录已过期"); }
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error(data.error || ("HTTP " + r.status)); }
        return data;
      });
    });
  }

  function chart(id, width, height) {
    var box = $(id);
    box.textContent = "";
    var svg = svgEl("svg", { viewBox: "0 0 " + width + " " + height, width: "100%",
      role: "img", "class": "dash-svg" });
    box.appendChild(svg);
    return svg;
  }
  function nothing(id, text) { var box = $(id); box.textContent = ""; box.appendChild(el("p", "empty", text)); }

  // Vertical bars: groups of {label, values: [..]}, one series per value, in a
  // viewBox about as wide as the panel (so that the labels keep their size).
  function columns(id, groups, series, width) {
    var height = 220, top = 24, bottom = 40, left = 10;
    var peak = 1;
    groups.forEach(function (g) { g.values.forEach(function (v) { peak = Math.max(peak, v); }); });
    var svg = chart(id, width, height);
    var slot = (width - left * 2) / groups.length;
    var barWidth = Math.min(36, slot * 0.7 / series.length);
    var plot = height - top - bottom;
    svg.appendChild(svgEl("line", { x1: left, x2: width - left, y1: top + plot, y2: top + plot, "class": "axis" }));
    groups.forEach(function (g, i) {
      var start = left + slot * i + (slot - barWidth * series.length) / 2;
      g.values.forEach(function (v, j) {
        var h = Math.round(plot * v / peak), x = start + barWidth * j;
        var bar = svgEl("rect", { x: x, y: top + plot - h, width: barWidth - 2, height: Math.max(h, 1),
          "class": "bar " + series[j].cls, "data-value": v });
        bar.appendChild(svgEl("title", {}, g.label + " " + series[j].name + "：" + v));
        svg.appendChild(bar);
        svg.appendChild(svgEl("text", { x: x + (barWidth - 2) / 2, y: top + plot - h - 5,
          "class": "value", "text-anchor": "middle" }, String(v)));
      });
      svg.appendChild(svgEl("text", { x: left + slot * i + slot / 2, y: height - bottom + 18,
        "class": "label", "text-anchor": "middle" }, g.label));
    });
    if (series.length > 1) {
      series.forEach(function (s, j) {
        var x = width - left - 200 + j * 100;
        svg.appendChild(svgEl("rect", { x: x, y: 4, width: 12, height: 12, "class": "bar " + s.cls }));
        svg.appendChild(svgEl("text", { x: x + 16, y: 14, "class": "label" }, s.name));
      });
    }
  }

  // Horizontal bars: rows of {label, value, max?, text}.
  function rows(id, items, cls) {
    var width = 420, line = 30, labelWidth = 150, height = items.length * line + 8;
    var peak = 1;
    items.forEach(function (r) { peak = Math.max(peak, r.max || r.value); });
    var svg = chart(id, width, height);
    var room = width - labelWidth - 60;
    items.forEach(function (r, i) {
      var y = 4 + i * line;
      svg.appendChild(svgEl("text", { x: 0, y: y + 17, "class": "label" }, r.label));
      if (r.max) {
        svg.appendChild(svgEl("rect", { x: labelWidth, y: y + 4, width: room, height: 18, "class": "track" }));
      }
      var w = Math.max(Math.round(room * r.value / (r.max || peak)), r.value ? 2 : 0);
      var bar = svgEl("rect", { x: labelWidth, y: y + 4, width: w, height: 18, "class": "bar " + cls,
        "data-value": r.value });
      bar.appendChild(svgEl("title", {}, r.label + "：" + r.text));
      svg.appendChild(bar);
      svg.appendChild(svgEl("text", { x: labelWidth + (r.max ? room : w) + 6, y: y + 17,
        "class": "value" }, r.text));
    });
  }

  function renderCards(d) {
    set("fig-conversations", d.conversations);
    set("fig-user-turns", d.user_turns);
    set("fig-containment", percent(d.contained, d.conversations));
    set("fig-contained", d.contained);
    set("fig-fallback-rate", percent(d.fallbacks, d.user_turns));
    set("fig-fallbacks", d.fallbacks);
    set("fig-low-confidence", d.low_confidence);
    set("fig-handoffs", d.handoffs.total);
    set("fig-queued", d.queued_now);
    set("fig-wait-avg", duration(d.wait.average_seconds));
    set("fig-wait-p90", duration(d.wait.p90_seconds));
    set("fig-wait-count", d.wait.count);
    set("fig-handling-avg", duration(d.handling.average_seconds));
    set("fig-handling-p90", duration(d.handling.p90_seconds));
    set("fig-handling-count", d.handling.count);
    set("fig-csat-avg", d.csat.average === null ? "—" : d.csat.average.toFixed(2) + " 分");
    set("fig-csat-count", d.csat.count);
    set("fig-overdue", d.overdue.in_period);
    set("fig-overdue-now", d.overdue.now);
    set("fig-agents-online", d.agents.online + " 人");
    var w = d.agents.window_seconds;
    set("fig-agents-window", "近 " + (w % 60 ? w + " 秒" : (w / 60) + " 分钟") + "内在工作台");
  }

  function renderCharts(d) {
    columns("chart-days", d.by_day.map(function (x) {
      return { label: d.days === 1 ? "今日" : shortDate(x.date), values: [x.conversations, x.handoffs] };
    }), [{ name: "会话", cls: "series-a" }, { name: "转人工", cls: "series-b" }], 1100);
    if (d.handoffs.by_reason.length) {
      rows("chart-reasons", d.handoffs.by_reason.map(function (r) {
        return { label: r.label, value: r.count, text: r.count + " 次" };
      }), "series-b");
    } else { nothing("chart-reasons", "这段时间没有转人工"); }
    if (d.csat.count) {
      columns("chart-csat", ["1", "2", "3", "4", "5"].map(function (s) {
        return { label: s + " 分", values: [d.csat.distribution[s]] };
      }), [{ name: "评价", cls: "series-c" }], 420);
    } else { nothing("chart-csat", "这段时间没有满意度评价"); }
    if (d.agents.list.length) {
      rows("chart-agents", d.agents.list.map(function (a) {
        var state = a.online ? (a.available ? "在线" : "在线·暂停接单") : "离线";
        return { label: a.name + "（" + state + "）", value: a.load, max: a.max_tickets,
          text: a.load + (a.max_tickets ? " / " + a.max_tickets : "") + " 张" };
      }), "series-a");
    } else { nothing("chart-agents", "当前没有客服在线"); }
  }

  function renderQuestions(d) {
    var body = $("unanswered");
    body.textContent = "";
    $("no-unanswered").hidden = d.unanswered.length > 0;
    d.unanswered.forEach(function (q, i) {
      var tr = el("tr");
      tr.appendChild(el("td", "num", String(i + 1)));
      var text = el("td", "question");
      text.appendChild(el("div", null, q.text));
      if (q.examples.length) { text.appendChild(el("div", "examples", "相似：" + q.examples.join("　"))); }
      tr.appendChild(text);
      tr.appendChild(el("td", "num count", String(q.count)));
      tr.appendChild(el("td", "num", String(q.variants)));
      tr.appendChild(el("td", null, Object.keys(q.reasons).map(function (r) {
        return (REASONS[r] || r) + " " + q.reasons[r];
      }).join(" · ")));
      body.appendChild(tr);
    });
    $("review-link").setAttribute("href", "api/dashboard/review.csv?days=" + d.days);
  }

  function render(d) {
    $("dash-error").hidden = true;
    set("dash-period", (d.days === 1 ? "今日 " + d.start.slice(0, 10)
      : "近 " + d.days + " 天：" + d.start.slice(0, 10) + " 至 " + d.by_day[d.by_day.length - 1].date) +
      "（" + d.timezone + "）· 更新于 " + d.generated_at.slice(11, 19));
    renderCards(d);
    renderCharts(d);
    renderQuestions(d);
    document.body.setAttribute("data-loaded-days", String(d.days));
  }

  function load() {
    Array.prototype.forEach.call(document.querySelectorAll(".range"), function (b) {
      b.classList.toggle("active", Number(b.getAttribute("data-days")) === days);
    });
    return api("dashboard?days=" + days).then(render).catch(function (e) {
      var n = $("dash-error"); n.hidden = false; n.textContent = e.message;
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll(".range"), function (b) {
    b.addEventListener("click", function () { days = Number(b.getAttribute("data-days")); load(); });
  });
  $("dash-refresh").addEventListener("click", load);
  api("me").then(function (m) { set("me", "主管：" + m.name + "（" + m.login + "）"); }).catch(function () {});
  load();
  setInterval(load, 60000);
})();
