"""OpenAPI description of the API authentication (drf-spectacular extension, loaded by ApiConfig)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ShopTokenScheme(OpenApiAuthenticationExtension):
    target_class = "retention_app.api.authentication.ShopTokenAuthentication"
    name = "shopToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Per-shop API token `bmr_<prefix>_<secret>` (create one in the panel, Settings → "
            "API tokens, or `manage.py api_token_create --shop DOMAIN`). It only sees its shop's data.",
        }


class PanelSessionScheme(OpenApiAuthenticationExtension):
    target_class = "retention_app.api.authentication.PanelSessionAuthentication"
    name = "panelSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
