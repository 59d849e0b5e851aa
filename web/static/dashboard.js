// The dashboard refreshes its live part in place: filters, form input, scroll and the sections a
// reader unfolded (<details> with an id) stay as they are.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) { return; }
  var url = live.getAttribute("data-refresh");
  var every = parseInt(live.getAttribute("data-every") || "5", 10) * 1000;
  var pause = document.getElementById("pause-refresh");
  var stamp = document.getElementById("refreshed-at");
  var busy = false;

  function refresh() {
    if (busy || document.hidden || (pause && pause.checked)) { return; }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        // Signed out meanwhile: the sign-in page must not land inside this one.
        if (response.redirected || response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        // Paused while the answer was on its way: the page stays as the reader left it.
        if (html === null || (pause && pause.checked)) { return; }
        var unfolded = Array.prototype.map.call(live.querySelectorAll("details[id][open]"),
          function (d) { return d.id; });
        live.innerHTML = html;
        unfolded.forEach(function (id) {
          var again = document.getElementById(id);
          if (again) { again.open = true; }
        });
        // The pages' one time format: 2026-11-28 09:30:05 UTC
        if (stamp) { stamp.textContent = new Date().toISOString().slice(11, 19) + " UTC"; }
      })
      .catch(function () { /* the server is away for a moment: try again next time */ })
      .finally(function () { busy = false; });
  }
  setInterval(refresh, every);
})();
