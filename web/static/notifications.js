// The Notifications page (and the platform's part of Mail): the add-sender form shows only the
// fields of the mode chosen, and Authenticate mailbox runs in a pop-up that reports back, as
// Authenticate Instance does; when the mailbox is authenticated the page reloads to show it.
(function () {
  "use strict";

  var form = document.getElementById("sender-form");
  if (form) {
    var showMode = function () {
      var checked = form.querySelector("input[name=mode]:checked");
      var mode = checked ? checked.value : "";
      form.querySelectorAll("[data-modes]").forEach(function (part) {
        part.hidden = part.getAttribute("data-modes").split(" ").indexOf(mode) < 0;
      });
    };
    form.querySelectorAll("input[name=mode]").forEach(function (radio) {
      radio.addEventListener("change", showMode);
    });
    showMode();
  }

  var pending = null;

  function show(ok, message) {
    var box = document.getElementById("sender-auth-message");
    box.hidden = false;
    box.className = "notice " + (ok ? "notice-ok" : "notice-error");
    box.textContent = message;
  }

  function onResult(data) {
    if (!data || data.type !== "bss-sender-auth" || !pending) { return; }
    if (data.sender_id !== null && String(data.sender_id) !== pending.senderId) { return; }
    pending = null;
    if (data.ok) { window.location.reload(); return; }  // the page shows the result at its top
    show(false, data.message);
  }

  window.addEventListener("message", function (event) {
    if (event.origin === window.location.origin) { onResult(event.data); }
  });
  if ("BroadcastChannel" in window) {
    new BroadcastChannel("bss-sender-auth").onmessage = function (event) { onResult(event.data); };
  }

  document.querySelectorAll("form.mailbox-auth").forEach(function (auth) {
    auth.addEventListener("submit", function () {
      var senderId = auth.getAttribute("data-sender-id");
      var name = "bss-mailbox-" + senderId;
      var w = 520, h = 680;
      var left = window.screenX + Math.max(0, (window.outerWidth - w) / 2);
      var top = window.screenY + Math.max(0, (window.outerHeight - h) / 2);
      var popup = window.open("", name, "popup=yes,width=" + w + ",height=" + h + ",left=" + left + ",top=" + top);
      var display = auth.querySelector("input[name=display]");
      if (!popup) {  // blocked: the same flow as a full-page redirect
        display.value = "page";
        auth.removeAttribute("target");
        return;
      }
      display.value = "popup";
      auth.target = name;
      pending = { popup: popup, senderId: senderId };
      var watch = setInterval(function () {
        if (!pending) { clearInterval(watch); return; }
        if (pending.popup.closed && document.hasFocus()) {
          clearInterval(watch);
          setTimeout(function () {  // a result posted just before closing may still arrive
            if (!pending) { return; }
            pending = null;
            show(false, "The Google window closed before Google sent an answer back: nothing was changed. " +
              "Click Authenticate mailbox again to finish.");
          }, 1500);
        }
      }, 500);
    });
  });
})();
