"""Merchant panel routes under /app/."""

from django.urls import include, path

from retention_app.panel import rule_views, views

app_name = "panel"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("switch-shop/", views.switch_shop, name="switch_shop"),
    path("customers/", views.customers, name="customers"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer"),
    path("rules/", rule_views.rule_list, name="rules"),
    path("rules/<int:rule_id>/", rule_views.rule_edit, name="rule_edit"),
    path("rules/<int:rule_id>/toggle/", rule_views.rule_toggle, name="rule_toggle"),
    path("rules/<int:rule_id>/preview/", rule_views.rule_preview, name="rule_preview"),
    path("rules/<int:rule_id>/test-send/", rule_views.rule_test_send_view, name="rule_test_send"),
    path("messages/", views.message_list, name="messages"),
    path("sync/", views.sync_status, name="sync"),
    path("privacy/", views.privacy, name="privacy"),
    path("privacy/exports/<int:export_id>.json", views.privacy_export_download, name="privacy_export"),
    path("settings/", views.settings_view, name="settings"),
    path("settings/api-tokens/", views.api_token_create_view, name="api_token_create"),
    path("settings/api-tokens/<int:token_id>/revoke/", views.api_token_revoke_view, name="api_token_revoke"),
    path("i18n/", include("django.conf.urls.i18n")),
]
