"""compose.yaml, checked without a Docker engine: it is valid against the Compose specification's JSON
schema, and it agrees with the code it runs.

Image tags must match the pinned Kafka and Spark versions, topic names, ports, paths and environment the
code's defaults, and every published port must bind 127.0.0.1 only.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from txmon_core import jars, large_table, topics
from txmon_core.broker import DEFAULT_PORT, server_properties
from txmon_core.options import BOOTSTRAP_ENV

ROOT = Path(__file__).parents[2]
SPARK_IMAGE = re.compile(
    r"^apache/spark:(?P<version>[0-9.]+)-scala(?P<scala>[0-9.]+)-java\d+-python3-ubuntu$"
)
SERVICES_WITH_HEALTHCHECKS = ("kafka", "spark-master", "spark-worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """compose.yaml as parsed by a YAML loader (anchors and merge keys resolved, as Compose does)."""
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict) and isinstance(loaded.get("services"), dict)
    return loaded


def compose_schema() -> dict[str, Any]:
    """The Compose specification's JSON schema (compose-spec/compose-spec, as check-jsonschema ships it)."""
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(vendored.read_text())


def test_compose_yaml_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = compose_schema()
    assert schema["title"] == "Compose Specification"
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
                for error in validator.iter_errors(compose)]
    assert problems == []
    # The check has teeth: a misspelt key and a wrong type are both caught.
    kafka = {**services(compose)["kafka"], "helthcheck": {}, "restart": 5}
    broken = {**compose, "services": {**services(compose), "kafka": kafka}}
    assert len(list(validator.iter_errors(broken))) >= 2


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def script(service: dict[str, Any]) -> str:
    """A service's shell script (the last item of `bash -c SCRIPT`), with Compose's `$$` unescaped."""
    command = service["command"]
    assert command[:2] == ["bash", "-c"], command
    return command[2].replace("$$", "$")


def words(text: str) -> list[str]:
    """A shell script's words, line continuations joined."""
    return shlex.split(text.replace("\\\n", " "), comments=True)


def option(argv: list[str], name: str) -> str:
    """The value after `name` in an argument list."""
    assert name in argv, f"{name} missing from {argv}"
    return argv[argv.index(name) + 1]


def job_argv(compose: dict[str, Any]) -> list[str]:
    """The spark-submit command line of the job container."""
    argv = words(script(services(compose)["spark-job"]))
    return argv[argv.index("/opt/spark/bin/spark-submit"):]


def test_images_match_the_pinned_versions(compose: dict[str, Any]) -> None:
    kafka_images = {s["image"] for s in services(compose).values() if s["image"].startswith("apache/kafka")}
    assert kafka_images == {f"apache/kafka:{jars.KAFKA_VERSION}"}
    spark_images = {s["image"] for s in services(compose).values() if s["image"].startswith("apache/spark")}
    assert len(spark_images) == 1, spark_images
    match = SPARK_IMAGE.match(spark_images.pop())
    assert match, "the Spark image must be the official Python variant, fully tagged"
    assert match["version"] == jars.SPARK_VERSION
    # The connector is the project's own pin: same artifact (hence Scala version) as the Maven pom fetches.
    connector = option(job_argv(compose), "--packages")
    assert connector == f"org.apache.spark:{jars.SPARK_ARTIFACTS[0]}:{jars.SPARK_VERSION}"
    assert jars.SPARK_ARTIFACTS[0].endswith(f"_{match['scala']}")


def test_published_ports_bind_loopback_only(compose: dict[str, Any]) -> None:
    published = [(name, port) for name, s in services(compose).items() for port in s.get("ports", [])]
    assert published, "nothing is published: the monitor on the host could not reach Kafka"
    for name, port in published:
        assert isinstance(port, str) and port.startswith("127.0.0.1:"), (name, port)
        assert len(port.split(":")) == 3, f"{name}: give host address, host port and container port: {port}"
    assert ("kafka", f"127.0.0.1:{DEFAULT_PORT}:9092") in published


def test_kafka_listeners_serve_the_host_and_the_containers(compose: dict[str, Any]) -> None:
    env = services(compose)["kafka"]["environment"]
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    # The host's clients get loopback addresses, as the embedded broker gives them.
    assert advertised["HOST"] == f"127.0.0.1:{DEFAULT_PORT}"
    assert services(compose)["spark-job"]["environment"][BOOTSTRAP_ENV] == advertised["INTERNAL"]
    assert f"--bootstrap-server {advertised['INTERNAL']}" in script(services(compose)["topics"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "ZOOKEEPER" not in " ".join(env)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])


def test_kafka_settings_agree_with_the_embedded_broker(compose: dict[str, Any]) -> None:
    env = services(compose)["kafka"]["environment"]
    embedded = dict(line.split("=", 1) for line in server_properties(1, 2, Path("x")).splitlines())
    compared = 0
    for key, value in env.items():
        name = key.removeprefix("KAFKA_").lower().replace("_", ".")
        if name in embedded and "listener" not in name and name not in ("node.id", "log.dirs"):
            assert str(value) == embedded[name], f"{key}={value}, the embedded broker has {embedded[name]}"
            compared += 1
    assert compared >= 8, "the settings that make one node work were not found"


def test_topics_are_the_codes_topics(compose: dict[str, Any]) -> None:
    created = re.findall(r"^create (\S+) ", script(services(compose)["topics"]), re.MULTILINE)
    assert tuple(created) == topics.ALL
    assert services(compose)["topics"]["environment"]["TXMON_PARTITIONS"] == "${TXMON_PARTITIONS:-1}"


def test_job_runs_the_code_with_its_pins_and_shared_paths(compose: dict[str, Any]) -> None:
    job = services(compose)["spark-job"]
    argv = job_argv(compose)
    assert option(argv, "--master") == "spark://spark-master:7077"
    assert "/opt/txmon/spark_app/__main__.py" in argv and ".:/opt/txmon:ro" in job["volumes"]
    data_dir = option(argv, "--data-dir")
    # The job's Python dependencies are installed at the versions pyproject pins.
    pyproject = (ROOT / "pyproject.toml").read_text()
    pins = re.findall(r"\b[a-z-]+==\S+", script(job))
    assert pins, "the job installs no pinned package"
    for pin in pins:
        assert f'"{pin}"' in pyproject, pin
    # The driver (job) and the executors (worker) see the checkpoints and the Parquet at the same paths,
    # under --data-dir as the job lays them out: <data-dir>/checkpoints, <data-dir>/large.
    mounts = {f"spark-checkpoints:{data_dir}/checkpoints", f"parquet:{data_dir}/{large_table.DIR_NAME}"}
    for name in ("spark-job", "spark-worker"):
        assert mounts <= set(services(compose)[name]["volumes"]), name


def test_the_driver_gets_its_packages_and_the_executors_nothing_of_txmons(compose: dict[str, Any]) -> None:
    """The driver takes its rows as Arrow; the executors run only Spark SQL expressions, with no Python."""
    job, worker = services(compose)["spark-job"], services(compose)["spark-worker"]
    installed = {pin.split("==")[0] for pin in re.findall(r"\b[a-z-]+==\S+", script(job))}
    assert installed == {"confluent-kafka", "orjson", "pyarrow"}
    # The guard before the install imports the same packages, so a restart skips only a complete install.
    [guard] = re.findall(r"python3 -c '(import [^']+)'", script(job))
    assert set(guard.removeprefix("import ").split(", ")) == {name.replace("-", "_") for name in installed}
    target = option(words(script(job)), "--target")
    assert f"pydeps:{target}" in job["volumes"] and job["environment"]["PYTHONPATH"] == target
    # Nothing of txmon's reaches the executors: no code, no packages, no Python path.
    argv = job_argv(compose)
    confs = [argv[i + 1] for i, word in enumerate(argv) if word == "--conf"]
    assert not [conf for conf in confs if conf.startswith("spark.executorEnv.")], confs
    assert "PYTHONPATH" not in worker.get("environment", {})
    sources = {volume.split(":")[0] for volume in worker["volumes"]}
    assert not sources & {".", "pydeps"}, worker["volumes"]


def test_healthchecks_and_named_volumes(compose: dict[str, Any]) -> None:
    for name in SERVICES_WITH_HEALTHCHECKS:
        assert services(compose)[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "kafka-data:/var/lib/kafka/data" in services(compose)["kafka"]["volumes"]
    declared = set(compose["volumes"])
    assert {"kafka-data", "spark-checkpoints", "parquet"} <= declared
    for name, service in services(compose).items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source == "." or source in declared, f"{name}: {source} is not a declared named volume"
    # Everything the job waits for is healthy (or done) first.
    needs = services(compose)["spark-job"]["depends_on"]
    assert needs["kafka"]["condition"] == "service_healthy"
    assert needs["spark-worker"]["condition"] == "service_healthy"
