"""The container topology and the production settings. The compose files are checked here as shipped,
official images and all, for the structure the scale-out relies on; test_compose.py and
test_compose_cluster.py bring them up for real (on Podman, with stand-ins for those images)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import elasticsearch
import pytest
import yaml
from django.conf import settings

from tests.support import ROOT


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_a_health_check(compose: dict) -> None:
    services = compose["services"]
    assert {"nginx", "web", "elasticsearch", "redis", "nats", "postgres"} <= set(services)
    for name in ("nginx", "web", "elasticsearch", "redis", "nats", "postgres"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"


def test_web_can_be_scaled(compose: dict) -> None:
    web = compose["services"]["web"]
    assert "container_name" not in web, "a fixed container name prevents --scale web=N"
    assert "ports" not in web, "replicas are reached through nginx, not host ports"
    assert web["build"] == "."
    conditions = {name: dep["condition"] for name, dep in web["depends_on"].items()}
    assert conditions == {
        "migrate": "service_completed_successfully",
        "elasticsearch": "service_healthy",
        "redis": "service_healthy",
        "nats": "service_healthy",
    }
    env = web["environment"]
    assert env["DJANGO_SETTINGS_MODULE"] == "shopcart.settings.production"
    assert env["DATABASE_URL"].startswith("postgres://")
    for key in ("SECRET_KEY", "ELASTICSEARCH_URL", "REDIS_URL", "NATS_URL"):
        assert key in env


def test_nginx_balances_over_web(compose: dict) -> None:
    nginx = compose["services"]["nginx"]
    assert nginx["depends_on"]["web"]["condition"] == "service_healthy"
    conf_path = next(v.split(":")[0] for v in nginx["volumes"] if "nginx" in v)
    conf = (ROOT / conf_path).read_text()
    assert re.search(r"server\s+web:8000", conf)
    assert "proxy_next_upstream" in conf


def test_elasticsearch_image_matches_the_client_major_version(compose: dict) -> None:
    image = compose["services"]["elasticsearch"]["image"]
    assert image.startswith("docker.elastic.co/elasticsearch/elasticsearch:")
    server_version = image.rsplit(":", 1)[1]
    assert server_version.split(".")[0] == elasticsearch.__versionstr__.split(".")[0] == "8"
    es_pom = (ROOT / "devstack" / "elasticsearch" / "pom.xml").read_text()
    assert f"<es.version>{server_version}</es.version>" in es_pom


def test_nats_runs_jetstream_and_redis_persists(compose: dict) -> None:
    assert "-js" in compose["services"]["nats"]["command"]
    assert "--appendonly" in compose["services"]["redis"]["command"]


def test_env_example_names_every_setting() -> None:
    keys = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line}
    keys |= {line.lstrip("# ").split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()}
    for key in ("DATABASE_URL", "ELASTICSEARCH_URL", "REDIS_URL", "NATS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"):
        assert key in keys


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_under_production_settings() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "shopcart.settings.production",
        "SECRET_KEY": "x" * 20 + "a-long-and-random-production-secret-value",
        "ALLOWED_HOSTS": "shop.example.com",
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_refuse_to_start_without_a_secret_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env["DJANGO_SETTINGS_MODULE"] = "shopcart.settings.production"
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


_PRINT_KEY = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"


def test_without_secret_key_the_local_settings_share_one_generated_key(tmp_path: Path) -> None:
    """What `make run`, `make dev` and every replica of `make run REPLICAS=N` do: no key in the repository
    is ever used; processes starting side by side all end up with the one key the first wrote."""
    key_file = tmp_path / "keys" / "secret_key"
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(DJANGO_SETTINGS_MODULE="shopcart.settings.base", SECRET_KEY_FILE=str(key_file))
    starts = [
        subprocess.Popen([sys.executable, "-c", _PRINT_KEY], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    keys = {process.communicate(timeout=60)[0].strip() for process in starts}
    assert len(keys) == 1, keys
    key = keys.pop()
    assert len(key) >= 50
    assert key == key_file.read_text().strip()
    assert list(key_file.parent.iterdir()) == [key_file], "no temporary file is left behind"
    # A later start reads the same key.
    again = subprocess.run([sys.executable, "-c", _PRINT_KEY], cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.stdout.strip() == key
    # SECRET_KEY, when set, wins.
    chosen = subprocess.run(
        [sys.executable, "-c", _PRINT_KEY],
        cwd=ROOT,
        env={**env, "SECRET_KEY": "k" * 60},
        capture_output=True,
        text=True,
    )
    assert chosen.stdout.strip() == "k" * 60
    assert subprocess.run(["git", "grep", "-qF", "-e", key], cwd=ROOT, check=False).returncode == 1


@pytest.mark.parametrize("settings_module", ["shopcart.settings.base", "shopcart.settings.production"])
def test_a_secret_key_published_in_the_repository_is_refused(settings_module: str) -> None:
    """A .env copied from an older .env.example still carries its placeholder: it must not sign anything."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "SECRET_KEY": "change-me-to-a-long-random-string"}
    result = subprocess.run([sys.executable, "-c", _PRINT_KEY], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "SECRET_KEY is a value published in the repository" in result.stderr


def test_the_local_default_database_is_the_stacks_postgresql() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DJANGO_SETTINGS_MODULE"] = "shopcart.settings.base"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; d = settings.DATABASES['default']; "
            "print(d['ENGINE'], d['HOST'], d['PORT'], d['NAME'], d['CONN_HEALTH_CHECKS'], d['OPTIONS'])",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split(maxsplit=5) == [
        "django.db.backends.postgresql",
        "127.0.0.1",
        str(settings.POSTGRES_PORT),
        "shopcart",
        "True",
        "{'connect_timeout': 2}\n",
    ], result.stderr


def test_sqlite_still_serves_when_database_url_names_it(tmp_path: Path) -> None:
    """One process on one machine may keep Django's tables in a file (README): migrate and a user work."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "shopcart.settings.test"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    code = (
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('migrate', verbosity=0); from accounts.services import register_user; "
        "u = register_user(name='Lite', email='Lite@Example.com', password='a-Long-password-1'); "
        "from django.db import connection; print(connection.vendor, u.email)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.split() == ["sqlite", "lite@example.com"], result.stderr
    assert (tmp_path / "shop.sqlite3").stat().st_size > 0


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_constraints_lock_every_requirement_at_its_pinned_version() -> None:
    """constraints.txt (make lock) holds the transitive versions; it must agree with every direct pin,
    or pip refuses to install and a fresh clone cannot build."""
    locked = _pins(ROOT / "constraints.txt")
    for name in ("requirements.txt", "requirements-dev.txt", "bench/requirements.txt"):
        for package, version in _pins(ROOT / name).items():
            assert locked.get(package) == version, f"{name} pins {package}=={version}; constraints.txt differs"


@pytest.fixture(scope="module")
def cluster_compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.cluster.yml").read_text())


def test_cluster_compose_runs_three_elasticsearch_nodes_that_find_each_other(
    compose: dict, cluster_compose: dict
) -> None:
    services = cluster_compose["services"]
    for name in ("es1", "es2", "es3"):
        node = services[name]
        assert node["image"] == compose["services"]["elasticsearch"]["image"], "one Elasticsearch version everywhere"
        env = node["environment"]
        assert env["node.name"] == name
        assert "discovery.type" not in env
        assert env["discovery.seed_hosts"].split(",") == ["es1", "es2", "es3"]
        assert env["cluster.initial_master_nodes"].split(",") == ["es1", "es2", "es3"]
        assert env["cluster.fault_detection.follower_check.timeout"] == "1s"
        assert "healthcheck" in node
    assert len({services[name]["volumes"][0] for name in ("es1", "es2", "es3")}) == 3, "each node its own data"


def test_cluster_compose_runs_three_routed_nats_servers_with_jetstream(cluster_compose: dict) -> None:
    services = cluster_compose["services"]
    for name in ("nats1", "nats2", "nats3"):
        command = services[name]["command"]
        assert "-js" in command
        assert command[command.index("--server_name") + 1] == name
        routes = command[command.index("--routes") + 1].split(",")
        assert routes == ["nats://nats1:6222", "nats://nats2:6222", "nats://nats3:6222"]
        assert "--cluster" in command
        assert "healthcheck" in services[name]


def test_cluster_compose_runs_redis_with_a_replica_and_three_sentinels(cluster_compose: dict) -> None:
    services = cluster_compose["services"]
    assert "--appendonly" in services["redis-primary"]["command"]
    replica = services["redis-replica"]["command"]
    assert replica[replica.index("--replicaof") + 1 :] == ["redis-primary", "6379"]
    for name in ("sentinel1", "sentinel2", "sentinel3"):
        script = " ".join(services[name]["command"])
        assert "--sentinel" in script
        assert re.search(r"sentinel monitor shopcart redis-primary 6379 2\b", script), "quorum 2 of 3"
        assert "healthcheck" in services[name]


def test_cluster_compose_points_every_replica_at_every_node(cluster_compose: dict) -> None:
    web = cluster_compose["services"]["web"]
    env = web["environment"]
    assert env["ELASTICSEARCH_URL"].split(",") == [f"http://es{i}:9200" for i in (1, 2, 3)]
    assert env["NATS_URL"].split(",") == [f"nats://nats{i}:4222" for i in (1, 2, 3)]
    assert env["REDIS_SENTINELS"].split(",") == [f"sentinel{i}:26379" for i in (1, 2, 3)]
    assert env["REDIS_SENTINEL_MASTER"] == "shopcart"
    assert env["CART_EVENTS_STREAM_REPLICAS"] == "3"
    assert "container_name" not in web
    assert "ports" not in web
    needed = {f"es{i}" for i in (1, 2, 3)} | {f"nats{i}" for i in (1, 2, 3)} | {f"sentinel{i}" for i in (1, 2, 3)}
    conditions = {name: dep["condition"] for name, dep in web["depends_on"].items()}
    assert conditions == {"migrate": "service_completed_successfully"} | dict.fromkeys(needed, "service_healthy")
    for name, service in cluster_compose["services"].items():
        assert name == "migrate" or "healthcheck" in service, f"{name} has no healthcheck"


def test_cluster_compose_sentinel_settings_reach_django_redis(settings) -> None:  # type: ignore[no-untyped-def]
    """REDIS_SENTINELS turns the one cache configuration (used by sessions and every direct Redis use)
    into django-redis' Sentinel client, reading and writing the primary only."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "shopcart.settings.base",
        "REDIS_URL": "redis://:s3cret@ignored:6379/2",
        "REDIS_SENTINELS": "sentinel1:26379,sentinel2:26379",
        "REDIS_SENTINEL_MASTER": "shopcart",
    }
    code = "import django, json; django.setup(); from django.conf import settings; print(json.dumps(settings.CACHES))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    cache = json.loads(result.stdout)["default"]
    assert cache["LOCATION"] == ["redis://:s3cret@shopcart/2"]
    assert cache["OPTIONS"]["CLIENT_CLASS"] == "django_redis.client.SentinelClient"
    assert cache["OPTIONS"]["CONNECTION_FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
    assert cache["OPTIONS"]["SENTINELS"] == [["sentinel1", 26379], ["sentinel2", 26379]]
    assert settings.SESSION_CACHE_ALIAS == "default"
