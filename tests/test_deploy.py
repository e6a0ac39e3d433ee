"""The deploy recipes parse, hang together, and run commands the CLI accepts."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from redo_hooks.cli import main
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
    assert "HEALTHCHECK" in text and "/healthz" in text
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.M)[1])  # type: ignore[index]
    cmd = json.loads(re.search(r"^CMD (.+)$", text, re.M)[1])  # type: ignore[index]
    assert entry[0] == "redo-hooks"
    assert check_command(entry[1:] + cmd) == "serve"


def test_compose_runs_redis_with_aof_the_receiver_and_scalable_workers() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "receiver", "worker"}
    conf = (DEPLOY / "redis.conf").read_text()
    assert re.search(r"^appendonly yes$", conf, re.M)
    assert re.search(r"^maxmemory-policy noeviction$", conf, re.M)
    assert "./redis.conf:/usr/local/etc/redis/redis.conf:ro" in services["redis"]["volumes"]
    for name in ("receiver", "worker"):
        service = services[name]
        assert service["environment"]["REDO_HOOKS_REDIS_URL"] == "redis://redis:6379/0"
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert check_command(services["receiver"]["command"]) == "serve"
    assert check_command(services["worker"]["command"]) == "worker"
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert "ports" not in services["worker"]


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


def test_kubernetes_worker_terminates_gracefully() -> None:
    (deployment,) = k8s("worker.yaml")
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert check_command(container["args"]) == "worker"
    grace = float(container["args"][container["args"].index("--grace-period") + 1])
    assert spec["terminationGracePeriodSeconds"] > grace
    assert spec["securityContext"]["runAsNonRoot"] is True


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


def test_the_secret_manifest_holds_no_real_secret() -> None:
    (secret,) = k8s("secret.yaml")
    assert secret["stringData"]["REDO_HOOKS_SECRETS"] == "replace-me"


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
