"""Interactive API docs served from files installed with the package (no network needed).

FastAPI's built-in /docs page loads Swagger UI from a CDN, so it is blank on an offline install
and needs an inline script the Content-Security-Policy forbids. The ``fastapi-offline`` wheel ships
Swagger UI 5's dist files (5 reads OpenAPI 3.1, which FastAPI writes); this page loads them and
``static/docs.js`` from this server only. Only its files are used, not its app class.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"

DOCS_ASSETS = "/docs/assets"

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>markless API</title>
  <link rel="icon" href="{DOCS_ASSETS}/favicon.png">
  <link rel="stylesheet" href="{DOCS_ASSETS}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS_ASSETS}/swagger-ui-bundle.js"></script>
  <script src="/static/docs.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Add ``/docs`` and its assets to ``app``."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_UI_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_PAGE)
