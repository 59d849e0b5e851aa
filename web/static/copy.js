// Copy buttons: a [data-clipboard] button copies its value (a whole job id shown short). One
// listener on the document also serves the buttons a live refresh puts in later.
(function () {
  "use strict";

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* the id stays in the title to select */ }
    document.body.removeChild(area);
  }

  function copied(button) {
    button.classList.add("copied");
    button.textContent = "Copied";
    setTimeout(function () { button.classList.remove("copied"); button.textContent = "Copy"; }, 1500);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-clipboard]");
    if (!button) { return; }
    var text = button.getAttribute("data-clipboard");
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { copied(button); },
        function () { fallbackCopy(text); copied(button); });
    } else {
      fallbackCopy(text);
      copied(button);
    }
  });
})();
