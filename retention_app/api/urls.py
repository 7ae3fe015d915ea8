"""REST API: /api/v1/… (token per shop, see retention_app.api.models) and the OpenAPI schema."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny
from rest_framework.routers import SimpleRouter

from retention_app.api import views

router = SimpleRouter()
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("orders", views.OrderViewSet, basename="order")
router.register("rules", views.RuleViewSet, basename="rule")
router.register("messages", views.MessageViewSet, basename="message")

app_name = "api"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    path("v1/metrics/retention", views.RetentionMetricsView.as_view(), name="metrics-retention"),
    path("v1/", include(router.urls)),
]
