"""The Kubernetes example (deploy/kubernetes.yaml): it parses, its probes reach the real
endpoints, it runs as the image expects (non-root, read-only root filesystem), and the policy and
runbooks load from its ConfigMaps as the kubelet mounts them."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

from bot.config import load_policy, load_settings, normalise_database_url
from bot.db import Database
from bot.effects.runner import CALL_GRACE
from bot.runbooks.catalog import RunbookCatalog
from bot.server import GRACEFUL_SECONDS
from tests.service.conftest import ROOT, get, web_only

MANIFEST = ROOT / "deploy" / "kubernetes.yaml"

Object = dict[str, Any]


def objects() -> list[Object]:
    loaded = [d for d in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")) if d]
    assert all(isinstance(d, dict) for d in loaded)
    return loaded


def one(kind: str, name: str | None = None) -> Object:
    [found] = [o for o in objects() if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    return found


def container() -> Object:
    [only] = one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def environment() -> dict[str, str]:
    """What the container's environment holds: its ``env`` and the Secret it loads."""
    values = {e["name"]: e["value"] for e in container()["env"]}
    for source in container()["envFrom"]:
        secret = one("Secret", source["secretRef"]["name"])
        values.update(secret["stringData"])
    return values


def port_of(name_or_number: str | int) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    [port] = [p["containerPort"] for p in container()["ports"] if p["name"] == name_or_number]
    assert isinstance(port, int)
    return port


def mounted(path: str) -> Object:
    """The volume mounted at ``path`` in the container."""
    [mount] = [m for m in container()["volumeMounts"] if m["mountPath"] == path]
    volumes = one("Deployment")["spec"]["template"]["spec"]["volumes"]
    [volume] = [v for v in volumes if v["name"] == mount["name"]]
    assert isinstance(volume, dict)
    return volume


def test_the_manifest_holds_a_secret_configmaps_a_deployment_and_a_service() -> None:
    kinds = sorted(o["kind"] for o in objects())
    assert kinds == [
        "ConfigMap",
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Secret",
        "Service",
    ]
    for item in objects():
        assert item["apiVersion"] and item["metadata"]["name"]


def test_the_environment_is_valid_settings_for_two_replicas_on_postgresql() -> None:
    secret = one("Secret")["stringData"]
    assert set(secret) == {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL"}
    settings = load_settings(**environment())
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert normalise_database_url(secret["DATABASE_URL"]) == settings.database_url
    assert settings.port == port_of("http")
    assert settings.host == "0.0.0.0"
    assert one("Deployment")["spec"]["replicas"] == 2


def test_it_runs_as_the_image_user_with_a_read_only_root_filesystem() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    [image_user] = [shlex.split(line)[1] for line in dockerfile if line.startswith("USER ")]
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == image_user
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert "emptyDir" in mounted("/tmp")
    resources = container()["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_the_probes_reach_the_real_endpoints(db: Database) -> None:
    probes = {kind: container()[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    startup = container()["startupProbe"]["httpGet"]
    assert int(environment()["PORT"]) == port_of(startup["port"])
    for probe in probes.values():
        assert port_of(probe["port"]) == int(environment()["PORT"])
    # The same paths on the real web app, against a migrated database, answer 200.
    with web_only(db) as url:
        for probe in [*probes.values(), startup]:
            assert get(f"{url}{probe['path']}").status == 200

    service = one("Service")
    pod_labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [service_port] = service["spec"]["ports"]
    assert port_of(service_port["targetPort"]) == int(environment()["PORT"])


def test_termination_grace_outlasts_the_graceful_shutdown() -> None:
    """The pause, requests in flight, the effects drained, then the Slack calls in progress:
    a pod killed before that would leave work for its lease to run out."""
    pod = one("Deployment")["spec"]["template"]["spec"]
    pause = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    worst = int(pause[1]) + GRACEFUL_SECONDS + GRACEFUL_SECONDS + CALL_GRACE
    assert pod["terminationGracePeriodSeconds"] > worst


def kubelet_mount(directory: Path, data: dict[str, str]) -> None:
    """Lay ConfigMap data out as the kubelet does: files in a timestamped hidden directory,
    ``..data`` pointing at it, and a symlink per key through ``..data``."""
    stamped = directory / "..2026_03_02_10_00_00.000000001"
    stamped.mkdir(parents=True)
    for key, text in data.items():
        (stamped / key).write_text(text, encoding="utf-8")
    (directory / "..data").symlink_to(stamped.name)
    for key in data:
        (directory / key).symlink_to(Path("..data") / key)


def test_the_policy_and_runbooks_load_from_the_configmaps_as_mounted(tmp_path: Path) -> None:
    root = tmp_path / "container"
    for mount in container()["volumeMounts"]:
        volume = mounted(mount["mountPath"])
        if "configMap" in volume:
            data = one("ConfigMap", volume["configMap"]["name"])["data"]
            kubelet_mount(root / mount["mountPath"].lstrip("/"), data)

    policy_file = Path(environment()["FIREBREAK_POLICY_FILE"])
    policy = load_policy(root / policy_file.relative_to("/"))

    # Runbooks from their ConfigMap, each once (the kubelet's hidden directories skipped).
    runbooks = one("ConfigMap", "firebreak-runbooks")["data"]
    for path in policy.runbooks.paths:
        assert "configMap" in mounted(str(path))
    catalog = RunbookCatalog.load([root / p.relative_to("/") for p in policy.runbooks.paths])
    assert catalog.skipped == []
    assert len(catalog) == len(runbooks)

    # Postmortem copies go to a writable volume, not the read-only root filesystem.
    output = policy.postmortem.output_dir
    assert output is not None and output.is_absolute()
    assert "emptyDir" in mounted(str(output))
