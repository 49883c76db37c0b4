// fsplane console: live updates over server-sent events, copy buttons.
// Every page reads right without this script; it only adds.
(function () {
  "use strict";

  // Copy buttons: shown only when the script runs.
  document.querySelectorAll("button.copy").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      var pre = document.getElementById(b.dataset.copy);
      if (!pre) return;
      var text = pre.textContent;
      var done = function () { b.textContent = "Copied"; setTimeout(function () { b.textContent = "Copy"; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { select(pre); });
      } else {
        select(pre);
      }
    });
  });
  function select(el) {
    var r = document.createRange();
    r.selectNodeContents(el);
    var s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
  }

  var live = document.querySelectorAll("[data-live]");
  if (!live.length || !window.EventSource) return;

  // Reload the page's live parts (same URL, parsed, swapped by id);
  // coalesced so a burst of changes costs one fetch.
  var pending = null;
  function refresh() {
    if (pending) return;
    pending = setTimeout(function () {
      fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (res) {
          if (res.redirected && /\/ui\/login$/.test(res.url)) { location.href = "/ui/login"; return null; }
          return res.ok ? res.text() : null;
        })
        .then(function (html) {
          pending = null;
          if (!html) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("[data-live]").forEach(function (el) {
            // Never pull a form from under someone typing in it.
            var a = document.activeElement;
            if (a && el.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)) return;
            var fresh = doc.getElementById(el.id);
            if (fresh) el.replaceWith(document.importNode(fresh, true));
          });
        })
        .catch(function () { pending = null; });
    }, 250);
  }

  // part sets (or adds, or removes) a gateway cell's <small class=name>,
  // in the order the server renders them.
  function part(el, name, text, extra) {
    var p = el.querySelector("." + name);
    if (!text) { if (p) p.remove(); return; }
    if (!p) { p = document.createElement("small"); el.append(" ", p); }
    p.className = name + extra;
    p.textContent = text;
  }

  function gateway(ev) {
    var g = JSON.parse(ev.data);
    var found = false;
    document.querySelectorAll("[data-gw-trunk]").forEach(function (el) {
      if (el.dataset.gwTrunk !== g.trunk || el.dataset.gwNode !== g.node) return;
      found = true;
      el.className = "gw " + g["class"] + " changed";
      el.querySelector(".state").textContent = g.state;
      part(el, "detail", g.detail, "");
      part(el, "register", g.register, g.register_failed ? " bad" : "");
      part(el, "calls", g.calls, "");
    });
    // A gateway the page has no cell for yet (a new trunk): reload.
    if (!found && document.querySelector('tr[data-trunk]')) refresh();
  }

  var es = new EventSource("/ui/events");
  var badge = document.getElementById("live");
  es.onopen = function () { if (badge) badge.hidden = false; };
  es.onerror = function () { if (badge) badge.hidden = true; };
  es.addEventListener("change", refresh);
  es.addEventListener("gateway", gateway);
  es.addEventListener("logout", function () { es.close(); location.href = "/ui/login"; });
})();
