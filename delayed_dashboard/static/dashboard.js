// Live refresh: every data-refresh ms, fetch this page's live part (X-Fragment: 1) and swap it in.
// The server escapes everything it renders, so inserting its HTML runs no script from task data.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var state = document.getElementById("refresh-state");
  if (!live) { return; }
  var every = parseInt(live.getAttribute("data-refresh"), 10) || 0;
  if (every <= 0) { if (state) { state.textContent = "(not on this page)"; } return; }

  function busy() {
    // Do not swap the table away while someone is using a control inside it.
    var active = document.activeElement;
    return active && live.contains(active) && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(active.tagName);
  }

  function tick() {
    if (document.hidden || busy()) { return later(); }
    fetch(window.location.href, { headers: { "X-Fragment": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        return response.text().then(function (html) {
          live.innerHTML = html;
          if (state) {
            state.textContent = response.ok ? "Updated " + new Date().toLocaleTimeString() + "."
                                            : "Last refresh answered HTTP " + response.status + ".";
          }
          live.setAttribute("data-updated", String(Date.now()));
        });
      })
      .catch(function () { if (state) { state.textContent = "Dashboard unreachable; retrying."; } })
      .then(later);
  }

  function later() { window.setTimeout(tick, every); }
  later();
})();
