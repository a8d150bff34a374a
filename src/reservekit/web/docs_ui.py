"""The API docs page (Swagger UI at ``/schema/swagger``) served from an installed package, never a CDN.

The service must work offline, so the page's script, style and icon come from the
``swagger-ui-bundle-v2`` wheel (Swagger UI 5, which reads OpenAPI 3.1) under ``/schema/static/``, the
document from ``/schema/openapi.json``, and the online validator is switched off. Every URL in the
page is relative, so it also works behind a proxy that mounts the service under a path.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from reservekit.web.access import PUBLIC

STATIC = "/static"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="static/favicon-32x32.png">
<link rel="stylesheet" href="static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="static/swagger-ui-bundle.js"></script>
<script src="static/swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: "openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  showExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout"
}});
</script>
</body>
</html>
"""


class PackagedSwaggerUI(OpenAPIRenderPlugin):
    """Swagger UI whose assets are files of an installed wheel, served by this app."""

    def __init__(self, path: str = "/swagger") -> None:
        super().__init__(path=path, favicon="", style="")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        del request
        title = str(openapi_schema.get("info", {}).get("title", "API"))
        return _PAGE.format(title=title.replace("<", "&lt;")).encode()

    def receive_router(self, router: Router) -> None:
        router.register(
            create_static_files_router(
                path=STATIC, directories=[str(swagger_ui_path)], opt=PUBLIC, name="swagger-ui-static"
            )
        )
