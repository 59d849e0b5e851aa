// The API's Swagger UI, started from a file instead of the plugin's inline script: the CSP
// allows no inline script. BaseLayout, not the plugin's StandaloneLayout: that one's top bar
// (a box to explore other specs) draws its logo with an inline <style>, which the CSP blocks.
window.addEventListener("load", function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: new URL(root.getAttribute("data-spec-url"), window.location.href).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    showExtensions: true,
    showCommonExtensions: true,
    // The default badge asks a validator elsewhere; the CSP would block it anyway.
    validatorUrl: null
  });
});
