// The instance page: copy buttons, and Authenticate Instance in a pop-up that reports back.
(function () {
  "use strict";

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.getAttribute("data-copy");
      var label = button.textContent;
      var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = label; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
      } else { fallbackCopy(text); done(); }
    });
  });

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text; document.body.appendChild(area); area.select();
    try { document.execCommand("copy"); } catch (e) { /* the text stays selectable on the page */ }
    document.body.removeChild(area);
  }

  var form = document.getElementById("authenticate-form");
  if (!form) { return; }
  var instanceId = form.getAttribute("data-instance-id");
  var pending = null;

  function show(ok, message) {
    var box = document.getElementById("auth-message");
    box.hidden = false;
    box.className = "notice " + (ok ? "notice-ok" : "notice-error");
    box.textContent = message;
  }

  function refreshHealth() {
    var panel = document.getElementById("health");
    fetch(panel.getAttribute("data-health-url"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { panel.innerHTML = html; } });
  }

  function onResult(data) {
    if (!data || data.type !== "bss-instance-auth") { return; }
    var mine = data.instance_id !== null && String(data.instance_id) === instanceId;
    if (!mine && !(data.instance_id === null && pending)) { return; }
    pending = null;
    show(data.ok, data.message);
    refreshHealth();
    if (data.ok) {
      document.getElementById("authenticate").textContent = "Re-authenticate";
      var disconnect = document.getElementById("disconnect-form");
      if (disconnect) { disconnect.hidden = false; }
    }
  }

  window.addEventListener("message", function (event) {
    if (event.origin === window.location.origin) { onResult(event.data); }
  });
  if ("BroadcastChannel" in window) {
    new BroadcastChannel("bss-instance-auth").onmessage = function (event) { onResult(event.data); };
  }

  form.addEventListener("submit", function () {
    var name = "bss-authenticate-" + instanceId;
    var w = 520, h = 680;
    var left = window.screenX + Math.max(0, (window.outerWidth - w) / 2);
    var top = window.screenY + Math.max(0, (window.outerHeight - h) / 2);
    var popup = window.open("", name, "popup=yes,width=" + w + ",height=" + h + ",left=" + left + ",top=" + top);
    var display = form.querySelector("input[name=display]");
    if (!popup) {  // blocked: the same flow as a full-page redirect
      display.value = "page";
      form.removeAttribute("target");
      return;
    }
    display.value = "popup";
    form.target = name;
    pending = { popup: popup };
    var watch = setInterval(function () {
      if (!pending) { clearInterval(watch); return; }
      // Google's pages may sever the opener link, making the pop-up look closed while the user
      // is still in it; the user closing it brings the focus back here.
      if (pending.popup.closed && document.hasFocus()) {
        clearInterval(watch);
        // Give a result posted just before closing the time to arrive.
        setTimeout(function () {
          if (!pending) { return; }
          pending = null;
          show(false, "The Google window closed before Google sent an answer back. If Google showed " +
            "\u201cError 400: redirect_uri_mismatch\u201d, add exactly " + form.getAttribute("data-redirect-uri") +
            " to your OAuth client's Authorized redirect URIs in Google Cloud console (APIs & Services \u203a " +
            "Credentials), then click Authenticate Instance again.");
          refreshHealth();
        }, 1500);
      }
    }, 500);
  });
})();
