// Starts Swagger UI on /openapi.json. A file, not an inline script: the page's CSP allows
// only scripts from this collector. validatorUrl null: no call to an online validator.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
