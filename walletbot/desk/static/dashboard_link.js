// The console's header link to the supervisor dashboard, for supervisors only
// (the page and its API refuse everyone else anyway).
(function () {
  "use strict";
  var Desk = window.Desk;
  if (!Desk) { return; }
  function addLink(me) {
    if (!me || !me.roles || me.roles.indexOf("supervisor") < 0 || document.getElementById("dashboard-link")) {
      return;
    }
    var link = document.createElement("a");
    link.id = "dashboard-link";
    link.href = "dashboard";
    link.className = "link";
    link.textContent = "主管看板";
    // desk.css styles .link buttons; an anchor also needs these (no inline style attribute: CSP).
    link.style.textDecoration = "none";
    link.style.borderRadius = "6px";
    link.style.marginRight = "8px";
    document.getElementById("slot-header").appendChild(link);
  }
  // api/me may have answered while this file was still loading: its hooks have run then.
  addLink(Desk.me());
  Desk.on("me", addLink);
})();
