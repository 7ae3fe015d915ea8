FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends gettext && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml ./
COPY retention_app ./retention_app
COPY shop_integrations ./shop_integrations
COPY templates ./templates
COPY manage.py ./
RUN pip install --no-cache-dir .
RUN useradd --create-home boomerang && mkdir -p /app/var && chown boomerang /app/var
USER boomerang
EXPOSE 8000
