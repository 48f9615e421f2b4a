"""docker-compose.yaml and the Dockerfile, validated without Docker (no engine runs here).

What ``docker compose config`` would reject, checked on the parsed file (anchors and ``<<`` merges
resolved, ``${VAR:-default}`` interpolated with the defaults): top-level and service keys, an image or
build per service, ``depends_on`` targets and conditions, profiles, volumes, ports, environment values.
Then what only running it would reveal: every local path exists (build context, Dockerfile, COPY
sources, bind mounts), every command exists (Airflow's CLI, the Celery worker, ``python -m`` modules
and their sub-commands, Python snippets compile), every environment variable the package reads is
known and set the same way in every Airflow service, every connection parses (the seller's through the
package's own validation), the addresses point at the services that serve them, and the connection
ids, Variables, queue, executor and rate-limit backend are those of ``tests/e2e/deployment.py``, which
the distributed end-to-end test runs.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from tests.e2e import deployment

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"

TOP_LEVEL = {"name", "services", "volumes", "networks", "configs", "secrets", "include"}
SERVICE_KEYS = {
    "build", "image", "command", "entrypoint", "environment", "env_file", "volumes", "ports", "expose",
    "depends_on", "healthcheck", "restart", "profiles", "user", "working_dir", "networks",
    "container_name", "labels", "deploy", "init",
}  # fmt: skip
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
RESTART = {"no", "always", "on-failure", "unless-stopped"}
#: ``${NAME}``, ``${NAME:-default}``, ``${NAME-default}`` (compose interpolation); ``$$`` is a literal $.
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}")


def _interpolate(text: str) -> str:
    """``text`` as compose reads it with no ``.env``: every variable must have a default."""
    text = text.replace("$$", "\0")
    problems = [m.group(0) for m in INTERPOLATION.finditer(text) if m.group("op") is None]
    assert not problems, f"variables without a default (compose config fails without .env): {problems}"
    text = INTERPOLATION.sub(lambda m: m.group("default"), text)
    assert "$" not in text, f"a bare $ compose cannot interpolate: {text[text.index('$') - 40 :][:80]!r}"
    return text.replace("\0", "$")


@cache
def compose() -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(raw, dict)
    return _walk(raw)


def _walk(value: Any) -> Any:
    if isinstance(value, str):
        return _interpolate(value)
    if isinstance(value, dict):
        return {k: _walk(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v) for v in value]
    return value


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def airflow_services() -> dict[str, dict[str, Any]]:
    """Services running the Airflow image with Airflow's configuration (the x-airflow-common ones)."""
    return {n: s for n, s in services().items() if "AIRFLOW__CORE__EXECUTOR" in _env(s)}


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _depends(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def _connection(env: dict[str, str], conn_id: str) -> dict[str, Any]:
    return json.loads(env[deployment.conn_env(conn_id)])


def _hostport(url: str) -> tuple[str | None, int | None]:
    parts = urlparse(url)
    return parts.hostname, parts.port


def _published_ports(service: dict[str, Any]) -> set[int]:
    """Container ports a service listens on (``ports`` targets and ``expose``)."""
    ports = {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service.get("ports") or []}
    return ports | {int(p) for p in service.get("expose") or []}


# ---------------------------------------------------------------------- the schema


def test_yaml_loads_with_the_compose_top_level_keys():
    keys = {k for k in compose() if not k.startswith("x-")}
    assert keys <= TOP_LEVEL, keys - TOP_LEVEL
    assert services(), "no services"


@pytest.mark.parametrize("name", sorted(yaml.safe_load(COMPOSE.read_text())["services"]))
def test_each_service_is_well_formed(name):
    service = services()[name]
    assert set(service) <= SERVICE_KEYS, f"{name}: unknown keys {set(service) - SERVICE_KEYS}"
    assert "image" in service or "build" in service, f"{name}: neither image nor build"
    if "restart" in service:
        assert service["restart"] in RESTART
    for key in ("profiles", "expose", "ports", "volumes"):
        assert isinstance(service.get(key, []), list), f"{name}: {key} must be a list"
    assert all(isinstance(p, str) for p in service.get("profiles", []))
    for value in _env(service).values():
        assert isinstance(value, str), f"{name}: environment values must be strings, got {value!r}"
    for port in service.get("ports", []):
        assert re.fullmatch(r"(\d+:)?\d+(/tcp|/udp)?", str(port)), f"{name}: port {port!r}"
    health = service.get("healthcheck")
    if health:
        test = health["test"]
        assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL", "NONE"), f"{name}: {test!r}"


def test_depends_on_targets_exist_and_their_conditions_can_be_met():
    all_services = services()
    for name, service in all_services.items():
        for target, condition in _depends(service).items():
            assert target in all_services, f"{name} depends on unknown service {target}"
            assert condition in CONDITIONS, f"{name} -> {target}: condition {condition}"
            other = all_services[target]
            if condition == "service_healthy":
                assert other.get("healthcheck"), f"{name} waits for {target} to be healthy: no healthcheck"
            if condition == "service_completed_successfully":
                assert other.get("restart") in (None, "no"), f"{target} is one-shot: it must not restart"
            # A service without profiles starts by default: it cannot wait for one that does not.
            if not service.get("profiles"):
                assert not other.get("profiles"), f"{name} (always on) depends on profiled {target}"


def test_no_dependency_cycles():
    graph = {name: set(_depends(s)) for name, s in services().items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for target in graph[name]:
            visit(target, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_named_volumes_are_declared_and_bind_mounts_exist():
    declared = set(compose().get("volumes") or {})
    used = set()
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert declared <= used, f"declared but unused volumes: {declared - used}"


def test_the_sandbox_profile_holds_the_sandbox_and_the_sqs_emulator():
    profiled = {n for n, s in services().items() if "sandbox" in s.get("profiles", [])}
    assert {"sp-api-sandbox", "sqs"} <= profiled
    always = set(services()) - profiled
    official = {"postgres", "redis", "airflow-init", "airflow-apiserver", "airflow-scheduler"}
    official |= {"airflow-dag-processor", "airflow-triggerer", "airflow-worker", "warehouse"}
    assert official <= always, official - always


# ---------------------------------------------------------------------- paths and the image


def _dockerfile() -> list[tuple[str, str]]:
    """``(instruction, arguments)`` per Dockerfile instruction (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


def _dockerignored() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_build_context_dockerfile_and_copy_sources_exist_and_are_not_ignored():
    for name, service in services().items():
        build = service.get("build")
        if build is None:
            continue
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (REPO / context / dockerfile).is_file(), f"{name}: no {dockerfile} in {context}"
    ignored = _dockerignored()
    copies = [args for instruction, args in _dockerfile() if instruction in ("COPY", "ADD")]
    assert copies
    for args in copies:
        sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            top = source.strip("./").split("/")[0]
            assert top not in ignored, f"COPY {source}: excluded by .dockerignore"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]+\])?==([^\s#]+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(3)
    return pins


def test_the_image_is_airflow_3_with_the_repositorys_pins():
    instructions = _dockerfile()
    base = next(args for instruction, args in instructions if instruction == "FROM")
    pins = {**_pins(REPO / "requirements-dev.txt"), **_pins(REPO / "requirements.txt")}
    assert base == f"apache/airflow:{pins['apache-airflow']}-python3.11"
    installed = " ".join(args for instruction, args in instructions if instruction == "RUN")
    assert "-r requirements.txt" in installed
    for name, _extra, version in re.findall(r'"([A-Za-z0-9_.\-]+)(\[[^\]]+\])?==([^"]+)"', installed):
        assert pins.get(name.lower()) == version, (
            f"Dockerfile pins {name}=={version}, requirements {pins.get(name.lower())}"
        )
    assert re.search(r"pip install [^&]*--no-deps \.(\s|$)", installed), "the package itself is not installed"
    assert re.search(r"--no-deps \./include", installed), "the sandbox is not installed"


# ---------------------------------------------------------------------- commands


@cache
def _airflow_parser() -> Any:
    from airflow.cli.cli_parser import get_parser

    return get_parser()


def _check_airflow_command(args: list[str]) -> None:
    if args[:1] == ["celery"]:
        from airflow.providers.celery.executors.celery_executor import CeleryExecutor

        groups = {c.name: c for c in CeleryExecutor.get_cli_commands()}
        assert "celery" in groups, "the celery provider has no `airflow celery` commands"
        assert args[1] in {c.name for c in groups["celery"].subcommands}, f"airflow celery {args[1]}?"
        return
    try:
        _airflow_parser().parse_args(args)
    except SystemExit as exc:
        raise AssertionError(f"`airflow {' '.join(args)}` is not an Airflow command") from exc


def _python_commands() -> Iterator[tuple[str, list[str]]]:
    for name, service in services().items():
        command = _command(service)
        if command[:1] == ["python"]:
            yield name, command[1:]


def test_airflow_service_commands_exist():
    commands = {n: _command(s) for n, s in airflow_services().items() if s.get("entrypoint") is None}
    assert {c[0] for c in commands.values()} >= {"api-server", "scheduler", "dag-processor", "triggerer"}
    assert ["celery", "worker"] in commands.values()
    for args in commands.values():
        _check_airflow_command(args)


def test_python_commands_exist():
    import importlib.util

    from sp_api_sandbox.cli import build_parser

    seen = set()
    for name, args in _python_commands():
        if args[0] == "-c":
            compile(args[1], f"<{name}>", "exec")
            seen.add("-c")
            continue
        assert args[0] == "-m", f"{name}: {args}"
        module = args[1]
        assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"
        if module == "sp_api_sandbox":
            try:
                build_parser().parse_args(args[2:])
            except SystemExit as exc:
                raise AssertionError(
                    f"{name}: `python -m sp_api_sandbox {' '.join(args[2:])}` rejected"
                ) from exc
            # argparse accepts abbreviations (--time-scal): every flag must be spelled out.
            sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
            flags = set(sub.choices[args[2]]._option_string_actions)
            unknown = [a for a in args[3:] if a.startswith("--") and a not in flags]
            assert not unknown, f"{name}: not flags of `sp_api_sandbox {args[2]}`: {unknown}"
            seen.add(args[2])
    assert {"serve", "sqs", "-c"} <= seen


def test_healthcheck_snippets_compile():
    for name, service in services().items():
        test = (service.get("healthcheck") or {}).get("test") or []
        if test[:2] == ["CMD", "python"] and test[2] == "-c":
            compile(test[3], f"<{name} healthcheck>", "exec")


def test_auth_manager_and_executor_exist():
    import importlib

    for name, service in airflow_services().items():
        env = _env(service)
        module, _, cls = env["AIRFLOW__CORE__AUTH_MANAGER"].rpartition(".")
        assert hasattr(importlib.import_module(module), cls), name
        assert env["AIRFLOW__CORE__EXECUTOR"] == deployment.EXECUTOR


# ---------------------------------------------------------------------- the package's settings


def _package_env_names() -> tuple[set[str], set[str]]:
    """``(names, prefixes)`` of the environment variables the package and its DAGs read."""
    names, prefixes = set(), set()
    sources = [*(REPO / "plugins" / "selling_partner").rglob("*.py"), *(REPO / "dags").glob("*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(func, "value", None)
            is_environ = isinstance(owner, ast.Attribute) and owner.attr == "environ"
            is_env = isinstance(owner, ast.Name) and owner.id in ("env", "environ")
            if not (called in ("env_seconds", "getenv") or (called == "get" and (is_environ or is_env))):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
            elif isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant):
                prefixes.add(str(arg.values[0].value))
    return names, prefixes


def test_every_package_setting_is_one_the_package_reads_and_set_alike_everywhere():
    names, prefixes = _package_env_names()
    assert {"SP_API_CONN_IDS", "SP_API_SYNC_DEFER_AFTER_SECONDS"} <= names, names  # the scan works
    envs = {n: _env(s) for n, s in airflow_services().items()}
    assert len(envs) >= 6
    package = {k for env in envs.values() for k in env if k.startswith("SP_API_")}
    unknown = {k for k in package if k not in names and not k.startswith(tuple(prefixes))}
    assert not unknown, f"set in docker-compose.yaml but never read by the package: {unknown}"
    shared = package | {
        k for env in envs.values() for k in env if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))
    }
    for key in shared:
        values = {n: env.get(key) for n, env in envs.items()}
        assert len(set(values.values())) == 1, f"{key} differs between Airflow services: {values}"
    from selling_partner.settings import env_seconds, seller_conn_ids

    env = next(iter(envs.values()))
    for key in package:
        if key in names and key.endswith("_SECONDS"):
            env_seconds(key, 0, environ=env)  # raises on a value that is not a number
    assert seller_conn_ids(env) == [deployment.SELLER_CONN_ID]


def test_connections_and_variables_are_the_e2e_tests():
    for name, service in airflow_services().items():
        env = _env(service)
        conns = {k for k in env if k.startswith("AIRFLOW_CONN_")}
        assert conns == {deployment.conn_env(c) for c in deployment.CONN_TYPES}, name
        variables = {k for k in env if k.startswith("AIRFLOW_VAR_")}
        assert variables == {deployment.var_env(v) for v in deployment.VARIABLES}, name
        for conn_id, conn_type in deployment.CONN_TYPES.items():
            assert _connection(env, conn_id)["conn_type"] == conn_type, f"{name}: {conn_id}"


def test_connections_point_at_the_services_that_serve_them():
    from selling_partner.hooks.config import config_from_connection

    env = _env(services()["airflow-scheduler"])
    all_services = services()
    seller = _connection(env, deployment.SELLER_CONN_ID)
    config = config_from_connection(
        seller["login"], seller["password"], seller["extra"], conn_id=deployment.SELLER_CONN_ID
    )
    assert config.rate_limit_backend == deployment.RATE_LIMIT_BACKEND
    sandbox_args = _command(all_services["sp-api-sandbox"])
    sandbox_port = int(sandbox_args[sandbox_args.index("--port") + 1])
    assert _hostport(config.endpoint) == ("sp-api-sandbox", sandbox_port)
    assert _hostport(config.lwa_endpoint) == ("sp-api-sandbox", sandbox_port)
    assert urlparse(config.lwa_endpoint).path == "/auth/o2/token"
    assert config.seller_id == "A1SANDBOXSELLERNA" and config.region == "na"  # the sandbox's na seller
    redis_host, redis_port = _hostport(str(config.rate_limit_dsn))
    broker_host, _ = _hostport(env["AIRFLOW__CELERY__BROKER_URL"])
    assert redis_host == broker_host == "redis" and redis_port in _published_ports(all_services["redis"])
    assert urlparse(str(config.rate_limit_dsn)).path != urlparse(env["AIRFLOW__CELERY__BROKER_URL"]).path

    warehouse = _connection(env, deployment.WAREHOUSE_CONN_ID)
    db = _env(all_services[warehouse["host"]])
    assert (warehouse["login"], warehouse["password"], warehouse["schema"]) == (
        db["POSTGRES_USER"],
        db["POSTGRES_PASSWORD"],
        db["POSTGRES_DB"],
    )
    assert warehouse["host"] != "postgres", "the warehouse is not Airflow's metadata database"

    aws = _connection(env, deployment.EVENTS_AWS_CONN_ID)["extra"]
    queue_url = env[deployment.var_env(deployment.VARIABLES[0])]
    sqs_args = _command(all_services["sqs"])
    sqs_at = ("sqs", int(sqs_args[sqs_args.index("--port") + 1]))
    assert _hostport(aws["endpoint_url"]) == _hostport(queue_url) == sqs_at
    assert urlparse(queue_url).path.rsplit("/", 1)[-1] == deployment.QUEUE_NAME
    # The sandbox publishes where the event DAG reads, into the queue sqs-init creates.
    assert sandbox_args[sandbox_args.index("--sqs-endpoint") + 1] == aws["endpoint_url"]
    assert sandbox_args[sandbox_args.index("--queue-url") + 1] == queue_url
    assert f'QueueName="{deployment.QUEUE_NAME}"' in _command(all_services["sqs-init"])[-1]
    assert "sqs-init" in _depends(all_services["sp-api-sandbox"])


def test_the_components_reach_each_other():
    env = _env(services()["airflow-scheduler"])
    api_host, api_port = _hostport(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert api_host == "airflow-apiserver" and api_port in _published_ports(services()[api_host])
    metadata = urlparse(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert metadata.hostname == "postgres"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    postgres = _env(services()["postgres"])
    assert (metadata.username, metadata.password, metadata.path.lstrip("/")) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"], "components must share one JWT secret"
    assert _env(services()["airflow-init"]).get("_AIRFLOW_DB_MIGRATE") == "true"
