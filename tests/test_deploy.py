"""The deployment files stay loadable, consistent with each other and with the code they deploy.

Protects: deploy/dagster.yaml passes Dagster's own instance-config validation with every secret taken from the
environment; deploy/helm/values.yaml uses only keys and enum values that Dagster's Helm chart defines, and
renders the same queue, pool and retry settings as deploy/dagster.yaml (validated by Dagster as well);
deploy/Dockerfile builds the code location the project declares, on the project's Python, from pinned
packages.

What this cannot do here: neither Helm nor a Docker engine runs on these machines, and the chart's
values.schema.json is in no PyPI or npm package we found. So CHART_KEYS below transcribes the part of the
chart's schema these values touch, from the chart's schema models in dagster-io/dagster
(helm/dagster/schema/schema/charts/: dagster/values.py, dagster/subschema/{daemon,concurrency,postgresql,
run_launcher,global_}.py, dagster_user_deployments/subschema/user_deployments.py, utils/kubernetes.py;
chart 1.13).
`helm lint --strict -f deploy/helm/values.yaml dagster/dagster` is the real check where Helm exists.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from dagster._core.instance.config import dagster_instance_config

ROOT = Path(__file__).resolve().parents[1]
DAGSTER_YAML = ROOT / "deploy" / "dagster.yaml"
HELM_VALUES = ROOT / "deploy" / "helm" / "values.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
WORKSPACE_TAG = "bird-etl/workspace"

# Allowed keys per path ("[]" stands for any list item). Paths not listed hold Kubernetes objects (env,
# volumes, container config) that the chart passes through; test_kubernetes_lists_* checks their shape.
CHART_KEYS: dict[str, set[str]] = {
    path: set(keys.split())
    for path, keys in {
        "": "dagsterWebserver dagster-user-deployments postgresql generatePostgresqlPasswordSecret"
        " generateCeleryConfigSecret rabbitmq redis flower ingress imagePullSecrets computeLogManager"
        " scheduler runLauncher pythonLogs dagsterDaemon busybox migrate telemetry serviceAccount global"
        " retention concurrency additionalInstanceConfig",
        "dagster-user-deployments": "enabled enableSubchart imagePullSecrets deployments",
        "dagster-user-deployments.deployments[]": "name image dagsterApiGrpcArgs codeServerArgs"
        " includeConfigInLaunchedRuns deploymentNamespace port replicaCount env envConfigMaps envSecrets"
        " annotations nodeSelector affinity tolerations podSecurityContext securityContext resources"
        " livenessProbe readinessProbe startupProbe labels volumeMounts volumes schedulerName initContainers"
        " sidecarContainers deploymentStrategy",
        "dagster-user-deployments.deployments[].image": "repository tag pullPolicy",
        "dagster-user-deployments.deployments[].includeConfigInLaunchedRuns": "enabled",
        "runLauncher": "type config",
        "runLauncher.config": "celeryK8sRunLauncher k8sRunLauncher customRunLauncher",
        "runLauncher.config.k8sRunLauncher": "image imagePullPolicy jobNamespace loadInclusterConfig"
        " kubeconfigFile envConfigMaps envSecrets envVars volumeMounts volumes labels failPodOnRunFailure"
        " resources schedulerName securityContext runK8sConfig",
        "runLauncher.config.k8sRunLauncher.runK8sConfig": "containerConfig podSpecConfig"
        " podTemplateSpecMetadata jobSpecConfig jobMetadata",
        "postgresql": "image enabled postgresqlHost postgresqlUsername postgresqlPassword postgresqlDatabase"
        " postgresqlParams postgresqlScheme service pool",
        "postgresql.service": "port",
        "global": "postgresqlSecretName dagsterHome serviceAccountName celeryConfigSecretName"
        " dagsterInstanceConfigMap",
        "dagsterDaemon": "enabled image runCoordinator heartbeatTolerance env envConfigMaps envSecrets"
        " deploymentLabels labels nodeSelector affinity tolerations podSecurityContext securityContext"
        " resources checkDbReadyInitContainer livenessProbe readinessProbe startupProbe annotations"
        " runMonitoring runRetries sensors schedules backfills schedulerName logFormat volumeMounts volumes"
        " initContainerResources extraContainers extraPrependedInitContainers",
        "dagsterDaemon.runCoordinator": "enabled type config",
        "dagsterDaemon.runCoordinator.config": "queuedRunCoordinator customRunCoordinator",
        "dagsterDaemon.runCoordinator.config.queuedRunCoordinator": "maxConcurrentRuns tagConcurrencyLimits"
        " dequeueIntervalSeconds dequeueNumWorkers dequeueUseThreads blockOpConcurrencyLimitedRuns",
        "dagsterDaemon.runRetries": "enabled maxRetries retryOnAssetOrOpFailure",
        # A free-form dict in the schema: these are the keys the chart's instance template reads.
        "dagsterDaemon.runMonitoring": "enabled startTimeoutSeconds cancelTimeoutSeconds maxResumeRunAttempts"
        " pollIntervalSeconds freeSlotsAfterRunEndSeconds",
        "concurrency": "enabled pools runs",
        "concurrency.pools": "defaultLimit granularity opGranularityRunBuffer",
        "concurrency.runs": "maxConcurrentRuns tagConcurrencyLimits",
        "concurrency.runs.tagConcurrencyLimits[]": "key value limit",
        "concurrency.runs.tagConcurrencyLimits[].value": "applyLimitPerUniqueValue",
        "telemetry": "enabled",
    }.items()
}
CHART_ENUMS: dict[str, set[str]] = {
    "runLauncher.type": {"CeleryK8sRunLauncher", "K8sRunLauncher", "CustomRunLauncher"},
    "dagsterDaemon.runCoordinator.type": {"QueuedRunCoordinator", "CustomRunCoordinator"},
    "dagster-user-deployments.deployments[].image.pullPolicy": {"Always", "IfNotPresent", "Never"},
    "concurrency.pools.granularity": {"run", "op"},
}


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _walk(node: object, path: str = "") -> Iterator[tuple[str, object]]:
    """Every (path, value) in a YAML tree, list items under `path[]`."""
    yield path, node
    if isinstance(node, Mapping):
        for key, child in node.items():
            yield from _walk(child, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for child in node:
            yield from _walk(child, f"{path}[]")


def _env_sources(node: object) -> Iterator[str]:
    """The variable names of every Dagster `env:` source in a config tree."""
    for _, value in _walk(node):
        if isinstance(value, Mapping) and set(value) == {"env"}:
            yield value["env"]


def _validated_instance_config(config: Mapping[str, Any], tmp_path: Path) -> Mapping[str, Any]:
    """The config as Dagster's instance loader validates it (schema and cross-field rules, no connection)."""
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(dict(config)))
    validated, _ = dagster_instance_config(str(tmp_path))
    return validated


def _rendered_by_chart(values: Mapping[str, Any]) -> dict[str, Any]:
    """The instance settings the chart's configmap-instance template writes from these values."""
    concurrency = values["concurrency"]
    retries = values["dagsterDaemon"]["runRetries"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    return {
        "concurrency": {
            "pools": {
                "default_limit": concurrency["pools"]["defaultLimit"],
                "granularity": concurrency["pools"]["granularity"],
            },
            "runs": {
                "max_concurrent_runs": concurrency["runs"]["maxConcurrentRuns"],
                "tag_concurrency_limits": concurrency["runs"]["tagConcurrencyLimits"],
            },
        },
        "run_retries": {
            "enabled": retries["enabled"],
            "max_retries": retries["maxRetries"],
            "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"],
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
        },
        "telemetry": values["telemetry"],
    }


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1]) for line in lines]


def test_production_dagster_yaml_passes_dagsters_validation(tmp_path: Path) -> None:
    shutil.copy(DAGSTER_YAML, tmp_path / "dagster.yaml")
    validated, _ = dagster_instance_config(str(tmp_path))
    assert validated["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert {"key": WORKSPACE_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 4} in validated[
        "concurrency"
    ]["runs"]["tag_concurrency_limits"]
    assert validated["run_retries"]["enabled"] and validated["run_retries"]["max_retries"] > 0
    postgres = validated["storage"]["postgres"]["postgres_db"]
    assert all(
        isinstance(postgres[field], Mapping) for field in ("hostname", "username", "password", "db_name")
    )
    assert set(_env_sources(validated)) == {
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_PORT",
        "DAGSTER_PG_USERNAME",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_DB",
    }


def test_helm_values_use_only_the_charts_keys_and_values() -> None:
    values = _load(HELM_VALUES)
    for path, node in _walk(values):
        if path in CHART_KEYS and isinstance(node, Mapping):
            assert set(node) <= CHART_KEYS[path], f"{path}: unknown keys {set(node) - CHART_KEYS[path]}"
        if path in CHART_ENUMS:
            assert node in CHART_ENUMS[path], f"{path}: {node!r} is not one of {CHART_ENUMS[path]}"
    # The chart's schema makes the config block of the chosen type required, and its instance template
    # fails when queue limits are set both under `concurrency.runs` and on the queued run coordinator.
    assert "k8sRunLauncher" in values["runLauncher"]["config"]
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert not {"maxConcurrentRuns", "tagConcurrencyLimits"} & set(queued)
    for deployment in values["dagster-user-deployments"]["deployments"]:
        assert {"name", "image", "port"} <= set(deployment)
        assert {"repository", "pullPolicy"} <= set(deployment["image"])


def test_kubernetes_lists_in_helm_values_are_well_formed() -> None:
    """The pass-through Kubernetes objects: EnvVar, SecretEnvSource, Volume and VolumeMount shapes."""
    for path, node in _walk(_load(HELM_VALUES)):
        if path.endswith(".env[]"):
            assert set(node) in ({"name", "value"}, {"name", "valueFrom"}), path
            assert not isinstance(node.get("value", ""), int | float | bool), (
                f"{path}: env values are strings"
            )
        elif path.endswith(".envSecrets[]"):
            assert set(node) <= {"name", "optional"} and "name" in node, path
        elif path.endswith(".volumes[]"):
            assert "name" in node and len(node) == 2, f"{path}: a volume has a name and exactly one source"
        elif path.endswith(".volumeMounts[]"):
            assert {"name", "mountPath"} <= set(node), path


def test_helm_and_dagster_yaml_set_the_same_queue_pools_and_retries(tmp_path: Path) -> None:
    production = _load(DAGSTER_YAML)
    rendered = _rendered_by_chart(_load(HELM_VALUES))
    assert {section: production[section] for section in rendered} == rendered
    validated = _validated_instance_config(rendered, tmp_path)
    assert validated["concurrency"]["runs"]["tag_concurrency_limits"][0]["key"] == WORKSPACE_TAG


def test_helm_values_hold_no_secrets() -> None:
    values = _load(HELM_VALUES)
    assert "postgresqlPassword" not in values["postgresql"]
    assert values["generatePostgresqlPasswordSecret"] is False
    names = {node["name"] for path, node in _walk(values) if path.endswith(".env[]")}
    assert not {name for name in names if re.search(r"KEY|PASSWORD|SECRET|TOKEN", name)}
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["envSecrets"] and deployment["includeConfigInLaunchedRuns"]["enabled"]


def test_image_serves_the_code_location_the_project_declares() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    instructions = _dockerfile_instructions()
    commands = [name for name, _ in instructions]
    assert commands[0] == "FROM" and instructions[0][1] == "python:3.11-slim"
    assert project["project"]["requires-python"].startswith(">=3.11")
    for name, arguments in instructions:
        if name == "COPY":
            for source in arguments.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    installs = [arguments for name, arguments in instructions if name == "RUN" and "pip install" in arguments]
    assert installs and all("-c constraints.txt" in command for command in installs)
    command = yaml.safe_load(dict(instructions)["CMD"])
    module = project["tool"]["dagster"]["module_name"]
    assert command[:3] == ["dagster", "api", "grpc"]
    assert command[command.index("--module-name") + 1] == module
    deployment = _load(HELM_VALUES)["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", module]
    assert str(deployment["port"]) == dict(instructions)["EXPOSE"] == command[command.index("--port") + 1]
    assert "USER" in commands


def test_image_dependencies_are_pinned_to_the_dagster_release() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pins = dict(
        line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line
    )
    assert {"dagster-postgres", "dagster-k8s"} <= {
        re.split(r"[<>=\[ ]", name)[0] for name in extras["deploy"]
    }
    _, minor, patch = pins["dagster"].split(".")
    library_version = f"0.{int(minor) + 16}.{patch}"  # Dagster's libraries: 1.13.28 <-> 0.29.28
    assert pins["dagster-postgres"] == pins["dagster-k8s"] == library_version
