// The page Google's consent lands on in the pop-up: it tells the portal tab how it went, then
// closes. The result comes as a JSON data block, which the CSP lets through (it is not run).
(function () {
  "use strict";
  var result = JSON.parse(document.getElementById("auth-result").textContent);
  // The opener may be gone (Google's pages can sever it): BroadcastChannel reaches every
  // portal tab of this origin anyway.
  try { if (window.opener && !window.opener.closed) window.opener.postMessage(result, window.location.origin); } catch (e) {}
  // (one channel per kind of consent: an instance's, a mail sender's mailbox's)
  try { var ch = new BroadcastChannel(result.type || "bss-instance-auth"); ch.postMessage(result); ch.close(); } catch (e) {}
  setTimeout(function () { window.close(); }, 400);
})();
