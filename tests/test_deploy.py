"""The deploy recipes parse, hang together, and run commands the CLI accepts."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from redo_hooks import RedoHooks
from redo_hooks.cli import main
from redo_hooks.cli.common import import_from_string as import_app
from redo_hooks.testing import drain, sample_body

from .conftest import SECRET, MakeHooks

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def check_command(args: list[str]) -> str:
    """Check ``redo-hooks ARGS`` parses (every option known); return the subcommand.

    ``--help`` is eager: click parses every option first (failing on an
    unknown one), then prints the help instead of running the command.
    """
    result = CliRunner().invoke(main, [*args, "--help"], prog_name="redo-hooks")
    assert result.exit_code == 0, result.output
    usage = re.search(r"Usage: redo-hooks (\S+)", result.output)
    assert usage is not None, result.output
    return usage[1]


def k8s(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if doc]


def test_a_wrong_command_is_caught_by_the_check() -> None:
    with pytest.raises(AssertionError, match="No such option"):
        check_command(["worker", "x:y", "--no-such-option"])


def test_dockerfile_is_slim_non_root_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert stages and all(image.endswith("-slim") for image in (s for s in stages))
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.M)[1])  # type: ignore[index]
    cmd = json.loads(re.search(r"^CMD (.+)$", text, re.M)[1])  # type: ignore[index]
    assert entry[0] == "redo-hooks"
    assert check_command(entry[1:] + cmd) == "serve"
    # One probe for every command: the file the entrypoint names (test_image.py runs it).
    probe = json.loads(re.search(r"^\s+CMD (\[.+\])$", text, re.M)[1])  # type: ignore[index]
    assert probe[0] == "redo-hooks" and check_command(probe[1:]) == "alive"
    assert probe[2] == entry[entry.index("--alive-file") + 1]


def test_the_image_builds_the_users_app_and_runs_the_app_named_by_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: ENV APP was read by nothing, and the image held this repository, not the
    user's app and its requirements."""
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG APP$", text, re.M) and re.search(r"APP=\$\{APP\}", text)
    assert 'pip install -r "$REQUIREMENTS"' in text  # the app's own requirements, if any
    assert "wheels/redo_hooks-" in text  # and redo-hooks by default (test_image.py)
    assert "COPY . ." in text  # the app's code, from the build context
    # The image's CMD names no app: every command reads APP.
    cmd = json.loads(re.search(r"^CMD (.+)$", text, re.M)[1])  # type: ignore[index]
    assert not any(":" in arg for arg in cmd)
    monkeypatch.setenv("APP", "tests.routes_app:hooks")
    for command in (["routes"], ["serve", "--port", "1"]):
        result = CliRunner().invoke(main, command)
        assert "Missing argument" not in result.output, result.output
    assert "refund" in CliRunner().invoke(main, ["routes"]).stdout


def test_compose_runs_redis_with_aof_the_receiver_and_scalable_workers() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "receiver", "worker", "dashboard"}
    conf = (DEPLOY / "redis.conf").read_text()
    assert re.search(r"^appendonly yes$", conf, re.M)
    assert re.search(r"^maxmemory-policy noeviction$", conf, re.M)
    # Before: maxmemory was commented out, so memory backpressure was off.
    maxmemory = re.search(r"^maxmemory (\d+)mb$", conf, re.M)
    assert maxmemory and int(maxmemory[1]) * 2**20 < parse_size(services["redis"]["mem_limit"])
    assert "./redis.conf:/usr/local/etc/redis/redis.conf:ro" in services["redis"]["volumes"]
    for name in ("receiver", "worker"):
        service = services[name]
        assert service["environment"]["REDO_HOOKS_REDIS_URL"] == "redis://redis:6379/0"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert check_command(services["receiver"]["command"]) == "serve"
    assert check_command(services["worker"]["command"]) == "worker"
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert "ports" not in services["worker"]
    # The image's one healthcheck fits every service (test_image.py): none overrides it.
    assert not any("healthcheck" in services[name] for name in ("receiver", "worker"))
    built = services["receiver"]["build"]["args"]
    assert set(built) == {"APP", "REDO_HOOKS", "REQUIREMENTS"}
    # Before: APP and REQUIREMENTS defaulted to the example, so a user's build
    # silently held the example shop and no redo-hooks.
    assert built["APP"].startswith("${APP:?")
    assert built["REQUIREMENTS"] == "${REQUIREMENTS:-requirements.txt}"


def test_compose_builds_the_example_from_this_repository_with_its_env_file() -> None:
    example = dict(
        line.split("=", 1)
        for line in (DEPLOY / "example.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert example["REDO_HOOKS"] == ".[dashboard]"  # this checkout, with the dashboard
    assert isinstance(import_app(example["APP"]), RedoHooks)
    assert "--env-file deploy/example.env" in (DEPLOY / "docker-compose.yml").read_text()


def test_compose_serves_the_dashboard_on_loopback_only_with_a_token() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    dashboard = compose["services"]["dashboard"]
    assert check_command(dashboard["command"]) == "dashboard"
    assert dashboard["ports"] == ["127.0.0.1:8001:8001"]  # never on a public interface
    assert "REDO_HOOKS_DASHBOARD_TOKEN:?" in dashboard["environment"]["REDO_HOOKS_DASHBOARD_TOKEN"]
    assert "healthcheck" not in dashboard  # the image's: it probes the login page


def test_kubernetes_dashboard_is_internal_with_probes_and_runs_as_non_root() -> None:
    deployment, service = k8s("dashboard.yaml")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert check_command(container["args"]) == "dashboard"
    assert container["readinessProbe"]["httpGet"]["path"] == "/login"
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    ingress = (DEPLOY / "k8s" / "ingress.yaml").read_text()
    assert "redo-hooks-dashboard" not in ingress  # not routed from outside


def parse_size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg])", text).groups()  # type: ignore[union-attr]
    return int(number) * {"k": 2**10, "m": 2**20, "g": 2**30}[unit]


def test_procfile_commands_parse() -> None:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip():
            args = shlex.split(line.split(":", 1)[1].replace("${PORT:-8000}", "8000"))
            assert args[0] == "redo-hooks"
            check_command(args[1:])


def test_kubernetes_receiver_has_probes_a_service_and_runs_as_non_root() -> None:
    deployment, service = k8s("receiver.yaml")
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert service["spec"]["selector"] == labels
    (container,) = pod["spec"]["containers"]
    assert check_command(container["args"]) == "serve"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"] for p in container["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in port_names
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_kubernetes_worker_terminates_gracefully_and_has_a_liveness_probe() -> None:
    (deployment,) = k8s("worker.yaml")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert check_command(container["args"]) == "worker"
    grace = float(container["args"][container["args"].index("--grace-period") + 1])
    assert spec["terminationGracePeriodSeconds"] > grace
    assert spec["securityContext"]["runAsNonRoot"] is True
    # Before: no liveness. The probe reads the file the worker is told to touch.
    probe = container["livenessProbe"]["exec"]["command"]
    assert probe[0] == "redo-hooks" and check_command(probe[1:]) == "alive"
    alive_file = container["args"][container["args"].index("--alive-file") + 1]
    assert probe[2] == alive_file
    # The root filesystem is read-only: the file's folder is a writable volume.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = mounts[str(Path(alive_file).parent)]
    assert any(v["name"] == volume and "emptyDir" in v for v in spec["volumes"])


def test_kubernetes_receiver_drains_before_stopping_and_keeps_metrics_off_the_ingress() -> None:
    deployment, service = k8s("receiver.yaml")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep" and spec["terminationGracePeriodSeconds"] > 30 + int(sleep[1])
    args = container["args"]
    metrics_port = int(args[args.index("--metrics-port") + 1])
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == metrics_port
    (ingress,) = k8s("ingress.yaml")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] == "http"  # the webhook port, not the metrics one
    [tls] = ingress["spec"]["tls"]
    assert tls["hosts"] == [ingress["spec"]["rules"][0]["host"]] and tls["secretName"]


def test_kubernetes_images_are_pinned_and_pulled_if_not_present() -> None:
    """Before: image redo-hooks:latest, pulled on every start."""
    for name in ("receiver.yaml", "worker.yaml", "redis.yaml"):
        for doc in k8s(name):
            if doc["kind"] not in ("Deployment", "StatefulSet"):
                continue
            for container in doc["spec"]["template"]["spec"]["containers"]:
                assert not container["image"].endswith(":latest"), container["image"]
                assert ":" in container["image"]
                assert container["imagePullPolicy"] == "IfNotPresent"


def test_kubernetes_includes_a_redis_with_maxmemory_and_its_service() -> None:
    config, statefulset, service = k8s("redis.yaml")
    conf = config["data"]["redis.conf"]
    assert re.search(r"^maxmemory-policy noeviction$", conf, re.M)
    assert re.search(r"^appendonly yes$", conf, re.M)
    maxmemory = int(re.search(r"^maxmemory (\d+)mb$", conf, re.M)[1])  # type: ignore[index]
    (redis,) = statefulset["spec"]["template"]["spec"]["containers"]
    limit = redis["resources"]["limits"]["memory"]
    assert limit.endswith("Gi") and maxmemory < int(limit[:-2]) * 1024
    assert statefulset["spec"]["volumeClaimTemplates"]
    assert service["spec"]["selector"] == statefulset["spec"]["template"]["metadata"]["labels"]


def test_the_worker_autoscaler_follows_the_backlog_metric_the_receiver_exposes(
    make_hooks: MakeHooks,
) -> None:
    """Before: workers scaled on CPU, though handlers mostly wait on I/O."""
    worker = next(h for h in k8s("hpa.yaml") if h["metadata"]["name"] == "redo-hooks-worker")
    [metric] = worker["spec"]["metrics"]
    assert metric["type"] == "External"
    name = metric["external"]["metric"]["name"]
    assert name == "redo_hooks_events_waiting"
    assert name in exposed_metric_names(make_hooks)


def test_apply_of_the_kubernetes_folder_creates_no_secret() -> None:
    """Before: `kubectl apply -f deploy/k8s/` overwrote the real Secret with replace-me."""
    kinds = {doc["kind"] for path in (DEPLOY / "k8s").glob("*.yaml") for doc in k8s(path.name)}
    assert "Secret" not in kinds
    docs = (ROOT / "docs" / "deployment.md").read_text()
    assert "kubectl create secret generic redo-hooks" in docs


@pytest.mark.parametrize("path", sorted((DEPLOY / "k8s").glob("*.yaml")), ids=lambda p: p.name)
def test_kubernetes_manifests_validate_against_the_api_schemas_offline(path: Path) -> None:
    """Every manifest against Kubernetes' own OpenAPI schemas (strict: no unknown field),
    bundled by kubernetes-validate, with no network."""
    for doc in k8s(path.name):
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_offline_validation_catches_a_wrong_manifest() -> None:
    (deployment,) = k8s("worker.yaml")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


#: The Kubernetes version the manifests are checked against.
KUBERNETES = "1.33"


def test_the_image_builds_where_a_docker_daemon_runs(tmp_path: Path) -> None:
    """Builds deploy/Dockerfile for a user's app (a package, the redo-hooks wheel in
    wheels/) and runs `routes` in it; skipped without a Docker daemon (test_image.py
    runs the same steps without one)."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker command: the image build is not checked here")
    info = subprocess.run([docker, "info"], capture_output=True, timeout=60, check=False)
    if info.returncode != 0:
        pytest.skip("no Docker daemon answers (docker info failed): image build not checked")
    wheel = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        timeout=300,
        check=True,
    )
    assert wheel.returncode == 0
    [built] = tmp_path.glob("redo_hooks-*.whl")
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "hooks.py").write_text(
        "from redo_hooks import RedoHooks\nhooks = RedoHooks()\n"
        "hooks.on('return.created', name='ship')(lambda event: None)\n"
    )
    (tmp_path / "wheels").mkdir()
    built.rename(tmp_path / "wheels" / built.name)  # installed by default from there
    tag = "redo-hooks-test-app:ci"
    build = subprocess.run(
        [
            *(docker, "build", "-f", str(DEPLOY / "Dockerfile")),
            *("--build-arg", "APP=shop.hooks:hooks", "-t", tag, str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if build.returncode != 0 and "pull" in build.stderr.lower() and "python:" in build.stderr:
        pytest.skip(f"the base image could not be pulled here: {build.stderr[-300:]}")
    assert build.returncode == 0, build.stderr[-2000:]
    routes = subprocess.run(
        [docker, "run", "--rm", tag, "routes"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "ship" in routes.stdout, routes.stderr


def test_pdbs_and_hpas_point_at_the_deployments() -> None:
    deployments = {
        d["metadata"]["name"]: d
        for d in k8s("receiver.yaml") + k8s("worker.yaml")
        if d["kind"] == "Deployment"
    }
    for pdb in k8s("pdb.yaml"):
        assert pdb["kind"] == "PodDisruptionBudget"
        matched = [
            d
            for d in deployments.values()
            if d["spec"]["template"]["metadata"]["labels"] == pdb["spec"]["selector"]["matchLabels"]
        ]
        assert len(matched) == 1
    targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in k8s("hpa.yaml")}
    assert targets == set(deployments)
    for hpa in k8s("hpa.yaml"):
        assert hpa["spec"]["minReplicas"] >= 2


def exposed_metric_names(make_hooks: MakeHooks) -> set[str]:
    hooks = make_hooks()
    hooks.on("return", name="h")(lambda event: None)
    with TestClient(hooks.asgi()) as client:
        client.post("/", content=sample_body(), headers={"Authorization": f"Bearer {SECRET}"})
        drain(hooks)
        text = client.get("/metrics").text
    names: set[str] = set()
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
    for family in text_string_to_metric_families(text):
        names.update(family.name + s for s in suffixes.get(family.type, [""]))
    return names


def test_dashboard_and_alerts_use_only_metrics_the_receiver_exposes(make_hooks: MakeHooks) -> None:
    exposed = exposed_metric_names(make_hooks)
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((DEPLOY / "prometheus-alerts.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {name for expr in exprs for name in re.findall(r"redo_hooks_\w+", expr)}
    assert used, "no metric used"
    assert used <= exposed, used - exposed
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
