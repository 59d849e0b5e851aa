// Forms with a data-confirm question ask it before they are sent (no inline handler: the CSP
// allows no inline script). Listening on the document covers forms a page refresh put in later.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
})();
