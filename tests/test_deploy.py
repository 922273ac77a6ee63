"""The deployment files under deploy/ stay consistent with the code they deploy.

Static checks (YAML and JSON parse, every metric a rule or panel uses exists in
streams/metrics.py, every configuration key and environment override exists in
streams/config.py, probes and ports agree) plus the real validators where they
are installed: promtool (Debian package `prometheus`), amtool
(`prometheus-alertmanager`) and systemd-analyze (`systemd`), and from PyPI
check-jsonschema (the Compose specification's schema) and kubernetes-validate
(the Kubernetes API schemas). A missing validator skips its test, naming what to
install; CI installs them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tomllib
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest
import yaml

from streams.config import Config, load_config
from streams.endpoints import HealthServer
from streams.metrics import ServiceMetrics

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "rules.yml"
RULES_TEST = DEPLOY / "prometheus" / "rules_test.yml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboard.json"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
UNIT = DEPLOY / "systemd" / "exfil-detector.service"
K8S = DEPLOY / "k8s"
WORKLOADS = [K8S / "deployment.yaml", K8S / "variants" / "statefulset.yaml"]

YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))
METRIC_NAME = re.compile(r"(?<![\w:])exfil_detector_[A-Za-z0-9_]+(?![\w:])")


def yaml_documents(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def k8s_objects(kind: str | None = None) -> list[tuple[Path, dict]]:
    found = []
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml_documents(path):
            if kind is None or doc.get("kind") == kind:
                found.append((path, doc))
    return found


def k8s_config() -> Config:
    [(_, configmap)] = [(p, d) for p, d in k8s_objects("ConfigMap") if d["metadata"]["name"] == "exfil-detector-config"]
    return load_config_text(configmap["data"]["detector.toml"])


def load_config_text(text: str, environ: dict[str, str] | None = None, tmp: Path | None = None) -> Config:
    tmp = tmp or Path(os.environ.get("TMPDIR", "/tmp"))
    path = tmp / f"deploy-test-{os.getpid()}.toml"
    path.write_text(text, encoding="utf-8")
    try:
        return load_config(path, environ={} if environ is None else environ)
    finally:
        path.unlink()


def exported_metric_names() -> set[str]:
    """Every sample name the service can expose, from the registry's metric families."""
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "summary": ("", "_sum", "_count", "_created"), "info": ("_info",)}
    names = set()
    for family in ServiceMetrics().registry.collect():
        names.update(family.name + suffix for suffix in suffixes[family.type])
    return names


def rule_expressions() -> list[str]:
    return [rule["expr"] for group in yaml_documents(RULES)[0]["groups"] for rule in group["rules"]]


def dashboard_expressions(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        exprs.append(query["query"] if isinstance(query, dict) else str(query or ""))
    return exprs


def require(tool: str, install: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed: {install}")
    return path


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)


# -- every file parses -------------------------------------------------------------

def test_deploy_holds_the_expected_yaml_files() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in YAML_FILES}
    assert {"compose.yaml", "prometheus/rules.yml", "prometheus/rules_test.yml", "prometheus/prometheus.yml",
            "alertmanager/alertmanager.yml", "k8s/deployment.yaml", "k8s/configmap.yaml", "k8s/secret.yaml",
            "k8s/service.yaml"} <= names


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_every_yaml_file_under_deploy_parses(path: Path) -> None:
    documents = yaml_documents(path)
    assert documents, f"{path} holds no YAML document"
    assert all(isinstance(d, dict) for d in documents)


def test_dashboard_is_valid_json_with_a_uid_and_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "exfil-detector"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panel_ids = [p["id"] for p in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_has_the_panels_an_operator_needs() -> None:
    exprs = " ".join(dashboard_expressions(json.loads(DASHBOARD.read_text(encoding="utf-8"))))
    for needed in ("exfil_detector_events_consumed_total", "exfil_detector_events_rejected_total",
                   "exfil_detector_batch_processing_seconds_bucket", "exfil_detector_event_to_alert_latency_seconds_bucket",
                   "exfil_detector_consumer_lag_messages", "exfil_detector_alerts_total", "exfil_detector_employees_tracked",
                   "exfil_detector_newest_event_age_seconds", "exfil_detector_sink_deliveries_total",
                   "exfil_detector_sink_failures_total", "exfil_detector_sink_outbox_depth", "exfil_detector_model_info"):
        assert needed in exprs, f"dashboard has no panel on {needed}"


# -- metric names agree with streams/metrics.py ----------------------------------------

def test_every_metric_the_rules_use_is_exported_by_the_service() -> None:
    exported = exported_metric_names()
    used = {name for expr in rule_expressions() for name in METRIC_NAME.findall(expr)}
    assert len(used) >= 10, used
    assert used <= exported, f"rules use metrics the service does not export: {sorted(used - exported)}"


def test_every_metric_the_dashboard_uses_is_exported_by_the_service() -> None:
    exported = exported_metric_names()
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = {name for expr in dashboard_expressions(dashboard) for name in METRIC_NAME.findall(expr)}
    assert len(used) >= 12, used
    assert used <= exported, f"dashboard uses metrics the service does not export: {sorted(used - exported)}"


def test_rule_unit_tests_feed_series_the_service_really_exports() -> None:
    exported = exported_metric_names()
    series = [s["series"] for test in yaml_documents(RULES_TEST)[0]["tests"] for s in test["input_series"]]
    names = {s.split("{", 1)[0] for s in series} - {"up"}
    assert names <= exported, sorted(names - exported)


def test_label_names_in_rules_and_dashboard_are_labels_of_the_service() -> None:
    labels = {"job", "instance", "le", "version", "path", "trained_at"}  # scrape labels, buckets, model info
    for metric in vars(ServiceMetrics()).values():
        labels.update(getattr(metric, "_labelnames", ()))
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    grouping = re.compile(r"\b(?:by|on|without)\s*\(([^)]*)\)")
    for expr in rule_expressions() + dashboard_expressions(dashboard):
        for group in grouping.findall(expr):
            for label in filter(None, (name.strip() for name in group.split(","))):
                assert label in labels, f"unknown label {label!r} in {expr!r}"


# -- configuration --------------------------------------------------------------------

def _dataclass_keys(cls: type, prefix: str = "") -> set[str]:
    keys = set()
    for f in fields(cls):
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if is_dataclass(default):
            keys |= _dataclass_keys(type(default), f"{prefix}{f.name}.")
        else:
            keys.add(prefix + f.name)
    return keys


def _toml_keys(data: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, value in data.items():
        keys |= _toml_keys(value, f"{prefix}{name}.") if isinstance(value, dict) else {prefix + name}
    return keys


def test_example_config_loads_and_equals_the_defaults() -> None:
    assert load_config(DEPLOY / "detector.toml", environ={}) == Config()


def test_example_config_lists_every_key_of_the_typed_config_with_a_comment() -> None:
    text = (DEPLOY / "detector.toml").read_text(encoding="utf-8")
    assert _toml_keys(tomllib.loads(text)) == _dataclass_keys(Config)
    for line in text.splitlines():
        if re.match(r"^[a-z_]+\s*=", line):
            assert "#" in line.split("=", 1)[1], f"key without a comment: {line}"


def test_example_config_holds_no_secret() -> None:
    text = (DEPLOY / "detector.toml").read_text(encoding="utf-8").lower()
    assert not re.search(r"^\s*(sasl_)?password\s*=|^\s*token\s*=", text, re.M)


def test_kubernetes_configmap_config_loads_and_agrees_with_the_workloads() -> None:
    config = k8s_config()
    assert config.kafka.group_id == "exfil-detector"
    assert config.metrics.port == 9108


def test_every_environment_override_in_compose_and_kubernetes_names_a_real_key() -> None:
    compose = yaml_documents(COMPOSE)[0]
    environ = {k: str(v) for k, v in compose["services"]["detector"]["environment"].items()}
    for _, workload in k8s_objects():
        for container in _containers(workload):
            for variable in container.get("env", []):
                environ[variable["name"]] = variable.get("value", "pod-0")
    overrides = {k for k in environ if k.startswith("EXFIL_") and "__" in k}
    assert "EXFIL_KAFKA__BOOTSTRAP_SERVERS" in overrides
    config = load_config(DEPLOY / "detector.toml", environ=environ)  # raises ConfigError on an unknown key
    assert config.kafka.bootstrap_servers == "redpanda:9092"
    assert config.sinks.alertmanager.url == "http://alertmanager:9093"


def test_secrets_are_the_two_the_service_reads_from_the_environment_and_are_placeholders() -> None:
    [(_, secret)] = k8s_objects("Secret")
    assert secret["stringData"] == {"EXFIL_KAFKA_SASL_PASSWORD": "CHANGE-ME", "EXFIL_WEBHOOK_TOKEN": "CHANGE-ME"}


# -- Kubernetes ----------------------------------------------------------------------

def _containers(obj: dict) -> list[dict]:
    spec = obj.get("spec", {})
    if obj.get("kind") == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod = spec.get("template", {}).get("spec", {})
    return pod.get("initContainers", []) + pod.get("containers", [])


def _workload(path: Path) -> dict:
    [workload] = [d for d in yaml_documents(path) if d["kind"] in ("Deployment", "StatefulSet")]
    return workload


@pytest.mark.parametrize("path", WORKLOADS, ids=lambda p: p.name)
def test_probes_point_at_healthz_and_readyz_on_the_configured_metrics_port(path: Path) -> None:
    port = k8s_config().metrics.port
    workload = _workload(path)
    [container] = workload["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == port

    def probe_target(probe: str) -> tuple[str, int]:
        get = container[probe]["httpGet"]
        return get["path"], ports.get(get["port"], get["port"])

    assert probe_target("livenessProbe") == ("/healthz", port)
    assert probe_target("startupProbe") == ("/healthz", port)
    assert probe_target("readinessProbe") == ("/readyz", port)
    annotations = workload["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}


@pytest.mark.parametrize("path", WORKLOADS, ids=lambda p: p.name)
def test_workload_runs_non_root_read_only_with_writable_volumes_and_time_to_shut_down(path: Path) -> None:
    config = k8s_config()
    workload = _workload(path)
    assert workload["spec"]["replicas"] == 3
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["terminationGracePeriodSeconds"] > 2 * config.service.shutdown_timeout_s
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["args"] == ["run", "--config", "/etc/exfil-detector/detector.toml"]
    assert {"requests", "limits"} <= set(container["resources"])
    volumes = {v["name"] for v in pod["volumes"]}
    volumes |= {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert {m["name"] for m in mounts.values()} <= volumes
    workdir = "/var/lib/exfil-detector"
    assert not mounts[f"{workdir}/{config.state.path}"].get("readOnly"), "the state directory must be writable"
    assert not mounts["/tmp"].get("readOnly")
    assert mounts[f"{workdir}/{Path(config.model.path).parent}"]["readOnly"] is True
    assert mounts[f"{workdir}/{Path(config.inputs.directory).parent}"]["readOnly"] is True


def test_service_exposes_the_metrics_port_of_the_pods() -> None:
    [(_, service)] = [(p, d) for p, d in k8s_objects("Service") if d["metadata"]["name"] == "exfil-detector"]
    [port] = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (k8s_config().metrics.port, "metrics")
    assert service["spec"]["selector"] == _workload(K8S / "deployment.yaml")["spec"]["selector"]["matchLabels"]


def test_kubernetes_manifests_are_namespace_free_and_reference_what_exists() -> None:
    objects = k8s_objects()
    assert objects
    names = {(d["kind"], d["metadata"]["name"]) for _, d in objects}
    for path, obj in objects:
        assert "namespace" not in obj["metadata"], f"{path}: manifests must not set a namespace"
        for container in _containers(obj):
            for source in container.get("envFrom", []):
                assert ("Secret", source["secretRef"]["name"]) in names
    for path in (K8S / "deployment.yaml", K8S / "cronjob-train.yaml"):
        for obj in yaml_documents(path):
            spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
            for volume in spec.get("template", {}).get("spec", {}).get("volumes", []):
                if "persistentVolumeClaim" in volume:
                    assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in names


def test_training_cronjob_runs_the_train_command_of_the_contract() -> None:
    [(_, cronjob)] = k8s_objects("CronJob")
    [train] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    script = train["args"][0]
    for flag in ("--events", "--directory", "--catalog", "--calendar", "--out"):
        assert flag in script
    assert "exfil-detector train" in script
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"


# -- containers -------------------------------------------------------------------------

def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    return [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if " " in l else "") for l in lines]


def test_dockerfile_runs_as_a_non_root_numeric_user() -> None:
    users = [arg for op, arg in _dockerfile_instructions() if op == "USER"]
    assert users, "the Dockerfile sets no USER: the container would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]}: needs a numeric non-zero uid (runAsNonRoot checks it)"
    assert uid == "10001"


def test_dockerfile_is_multi_stage_and_wires_the_service() -> None:
    instructions = _dockerfile_instructions()
    stages = [arg for op, arg in instructions if op == "FROM"]
    assert len(stages) == 2 and all("${PYTHON_IMAGE}" in s for s in stages)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text(encoding="utf-8")
    values = {op: arg for op, arg in instructions}
    assert json.loads(values["ENTRYPOINT"]) == ["exfil-detector"]
    assert json.loads(values["CMD"]) == ["run", "--config", "/etc/exfil-detector/detector.toml"]
    assert values["EXPOSE"] == str(Config().metrics.port)
    assert values["WORKDIR"] == "/var/lib/exfil-detector"
    assert "/healthz" in values["HEALTHCHECK"]
    for op, arg in instructions:
        if op == "COPY" and not arg.startswith("--from"):
            for source in arg.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def _healthcheck_command() -> list[str]:
    values = {op: arg for op, arg in _dockerfile_instructions()}
    return json.loads(values["HEALTHCHECK"].split("CMD", 1)[1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dockerfile_healthcheck_passes_against_the_service_endpoint_and_fails_without_it() -> None:
    command = _healthcheck_command()
    assert command[0] == "python"
    argv = [sys.executable, *command[1:]]
    server = HealthServer("127.0.0.1", 0, ServiceMetrics().registry, lambda: (False, "no partitions")).start()
    try:
        env = {**os.environ, "EXFIL_METRICS__PORT": str(server.port)}
        assert subprocess.run(argv, env=env, timeout=30).returncode == 0
    finally:
        server.stop()
    env = {**os.environ, "EXFIL_METRICS__PORT": str(_free_port())}
    assert subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode != 0


def test_dockerignore_keeps_the_context_to_what_the_image_copies() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in ignore
    for source in ("pyproject.toml", "detector/", "streams/", "deploy/detector.toml"):
        assert f"!{source}" in ignore


def test_compose_wires_the_stack_with_files_that_exist() -> None:
    compose = yaml_documents(COMPOSE)[0]
    services = compose["services"]
    assert {"redpanda", "detector", "prometheus", "alertmanager", "grafana"} <= set(services)
    declared_volumes = set(compose["volumes"])
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        build = service.get("build")
        if build:
            assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file()
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared_volumes, f"{name}: volume {source} is not declared"
    detector = services["detector"]
    assert "./detector.toml:/etc/exfil-detector/detector.toml:ro" in detector["volumes"]
    assert f"{Config().metrics.port}:{Config().metrics.port}" in detector["ports"]
    provider = yaml_documents(DEPLOY / "grafana" / "provisioning" / "dashboards" / "exfil-detector.yaml")[0]
    dashboards_dir = provider["providers"][0]["options"]["path"]
    assert any(v.endswith(f"{dashboards_dir}/exfil-detector.json:ro") for v in services["grafana"]["volumes"])


def test_prometheus_scrapes_the_detector_job_the_rules_select() -> None:
    config = yaml_documents(PROMETHEUS_CONFIG)[0]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["exfil-detector"]["static_configs"][0]["targets"] == [f"detector:{Config().metrics.port}"]
    assert 'job="exfil-detector"' in RULES.read_text(encoding="utf-8")


# -- systemd ------------------------------------------------------------------------------

def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_systemd_unit_is_hardened_reloads_on_sighup_and_waits_for_shutdown() -> None:
    s = _unit_settings()
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["KillSignal"] == ["SIGTERM"]
    assert s["Restart"] == ["on-failure"]
    assert int(s["TimeoutStopSec"][0].rstrip("s")) > 2 * Config().service.shutdown_timeout_s
    assert shlex.split(s["ExecStart"][0])[1:] == ["run", "--config", "/etc/exfil-detector/detector.toml"]
    for key, value in {"DynamicUser": "yes", "StateDirectory": "exfil-detector", "ProtectSystem": "strict",
                       "NoNewPrivileges": "yes", "WorkingDirectory": "/var/lib/exfil-detector"}.items():
        assert s[key] == [value], key
    assert s["EnvironmentFile"][0].lstrip("-").startswith("/etc/exfil-detector/")


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    tool = require("systemd-analyze", "apt-get install -y systemd")
    # verify checks that ExecStart exists: point it at a binary that does.
    unit = tmp_path / "exfil-detector.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/exfil-detector/bin/exfil-detector", "/bin/true"),
                    encoding="utf-8")
    result = run([tool, "verify", "--man=no", str(unit)])
    problems = [l for l in (result.stdout + result.stderr).splitlines() if unit.name in l]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


# -- the real validators -------------------------------------------------------------------

def test_promtool_check_rules() -> None:
    result = run([require("promtool", "apt-get install -y prometheus"), "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    result = run([require("promtool", "apt-get install -y prometheus"), "test", "rules", str(RULES_TEST)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_config() -> None:
    result = run([require("promtool", "apt-get install -y prometheus"), "check", "config", str(PROMETHEUS_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_check_config() -> None:
    result = run([require("amtool", "apt-get install -y prometheus-alertmanager"), "check-config", str(ALERTMANAGER_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_manifests_validate_against_the_api_schemas() -> None:
    validator = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate to check the manifests' schemas")
    for _, obj in k8s_objects():
        for version in ("1.29.0", validator.latest_version()):  # CronJob timeZone is GA since 1.27
            validator.validate(obj, version, strict=True)  # raises ValidationError, naming the field


def test_compose_file_validates_against_the_compose_specification() -> None:
    tool = require("check-jsonschema", "pip install check-jsonschema")
    result = run([tool, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])
    assert result.returncode == 0, result.stdout + result.stderr
