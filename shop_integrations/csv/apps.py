from django.apps import AppConfig


class CsvIntegrationConfig(AppConfig):
    name = "shop_integrations.csv"
    label = "csv_integration"
