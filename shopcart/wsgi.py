"""WSGI entry point for gunicorn (`gunicorn shopcart.wsgi`)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopcart.settings.base")

application = get_wsgi_application()
