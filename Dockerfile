FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PROJECT_ENVIRONMENT=/app/.venv
RUN apt-get update && apt-get install -y --no-install-recommends gettext postgresql-client \
    && rm -rf /var/lib/apt/lists/* && pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev
COPY . .
RUN .venv/bin/python manage.py compilemessages --ignore=.venv -v 0 \
    && DJANGO_SECRET_KEY=build-only .venv/bin/python manage.py collectstatic --noinput -v 0
ENV PATH="/app/.venv/bin:$PATH"
EXPOSE 8000
ENV WEB_BIND=0.0.0.0:8000
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi:application"]
