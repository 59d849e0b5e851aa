// The distributor picker goes to the chosen distributor's page as soon as one is chosen (its
// Show button does the same without script).
(function () {
  "use strict";
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();
