# The web image: gunicorn serving shopcart with production settings.
# BASE_IMAGE: python:3.11-slim by default. Any Debian-based image works: one without Python (the bare
# Debian base that `make test-compose` builds where no registry is reachable, docs/adr/0007) gets
# Debian's python3. The app runs from a virtualenv either way.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=shopcart.settings.production \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl $(command -v python3 >/dev/null || echo python3 python3-venv) \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

COPY . .
# collectstatic needs a key to import settings; the real one comes from the environment at run time.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v 0

# A home of its own: gunicorn keeps its control socket there.
RUN useradd --system --uid 10001 --create-home shop && chown -R shop /app
USER shop
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["gunicorn", "shopcart.wsgi", "-c", "shopcart/gunicorn_conf.py", "--bind", "0.0.0.0:8000"]
