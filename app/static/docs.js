// Starts Swagger UI on /docs. A file, not an inline script, so the page passes the
// Content-Security-Policy (script-src 'self') that every response carries.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
