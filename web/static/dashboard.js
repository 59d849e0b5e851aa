// The dashboard refreshes its live part in place: filters, form input and scroll stay as they are.
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
        if (html === null) { return; }
        live.innerHTML = html;
        if (stamp) { stamp.textContent = new Date().toLocaleTimeString(); }
      })
      .catch(function () { /* the server is away for a moment: try again next time */ })
      .finally(function () { busy = false; });
  }
  setInterval(refresh, every);
})();
