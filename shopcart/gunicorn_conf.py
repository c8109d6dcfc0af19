"""gunicorn settings for `make run` and the container; each can be overridden from the environment."""

import os

# Two cores here: two workers with a few threads each keeps both busy while requests wait on ES/Redis.
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# SIGTERM lets in-flight requests finish for this long before workers are killed.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
