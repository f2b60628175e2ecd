"""deploy/: the image, the compose file and the Kubernetes manifests, checked without Docker.

The compose file is validated against the Compose Specification's JSON schema (vendored in
``tests/unit/schemas``), the manifests against Kubernetes' own schemas (``kubernetes-validate``,
strict: unknown fields fail), and both for what this system needs of them.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from config.settings import Settings, Topics, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.30.0"
SETTING_VARIABLES = {
    f.metadata["doc"] for cls in (Settings, Topics) for f in dataclasses.fields(cls) if f.metadata
}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return [d for d in docs if d["kind"] != "Kustomization"]


def find(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def check_settings_env(env: dict[str, str]) -> None:
    """Every EWS_* variable is a real setting, and together they load."""
    unknown = sorted(set(env) - SETTING_VARIABLES)
    assert not unknown, f"not settings: {unknown}"
    values = {k: "placeholder" if "PASSWORD" in k else v for k, v in env.items()}
    load_settings(values)


# --- compose --------------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    """deploy/compose.yaml validates against the Compose Specification schema."""
    schema = json.loads((ROOT / "tests/unit/schemas/compose-spec.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(compose())


def test_compose_schema_check_is_not_vacuous() -> None:
    """A misspelled service key fails the same schema check."""
    schema = json.loads((ROOT / "tests/unit/schemas/compose-spec.json").read_text())
    broken = compose()
    broken["services"]["redis"]["comand"] = ["redis-server"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)


def test_compose_runs_three_kraft_brokers_replicated_three_ways() -> None:
    """Three apache/kafka brokers in one KRaft quorum, replication 3, min.insync.replicas 2."""
    services = compose()["services"]
    brokers = {
        n: s for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka:")
    }
    assert sorted(brokers) == ["kafka-1", "kafka-2", "kafka-3"]
    ids = set()
    for name, service in brokers.items():
        env = service["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == (
            "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        )
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        ids.add(env["KAFKA_NODE_ID"])
        assert service["volumes"], "broker data must survive a container restart"
    assert ids == {"1", "2", "3"}


def test_compose_redis_keeps_an_append_only_file_and_a_password() -> None:
    """Redis runs with AOF on a volume and requires a password."""
    redis = compose()["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command and "--requirepass" in command
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_compose_workers_and_simulator() -> None:
    """Three workers on their own store volumes and hostnames, and the simulator on Kafka."""
    services = compose()["services"]
    workers = {n: s for n, s in services.items() if n.startswith("worker-")}
    assert len(workers) == 3
    assert len({s["volumes"][0] for s in workers.values()}) == 3
    for name, service in workers.items():
        assert "entrypoint" not in service, "workers run the image's entrypoint, ews worker"
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["hostname"] == name
        assert service["volumes"][0].endswith(":/var/lib/ews/data")
        assert "EWS_REDIS_PASSWORD" in service["environment"]
        check_settings_env(service["environment"])
        assert service["environment"]["EWS_KAFKA_BOOTSTRAP"].count(",") == 2
    simulator = services["simulator"]
    assert simulator["entrypoint"][:3] == ["ews", "simulate", "--kafka"]
    assert (DEPLOY / compose()["configs"]["rules"]["file"]).resolve() == ROOT / "config/rules.toml"


# --- Kubernetes -----------------------------------------------------------------------------


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_validates_against_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    """Each manifest is valid for Kubernetes (strict: no unknown or misplaced field)."""
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kubernetes_schema_check_is_not_vacuous() -> None:
    """A misplaced field fails the same check."""
    broken = find("StatefulSet", "ews-worker")
    broken["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    """``kubectl apply -k deploy/k8s`` applies every file in the folder."""
    kustomization = yaml.safe_load((DEPLOY / "k8s/kustomization.yaml").read_text())
    files = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_worker_statefulset_has_store_volume_probes_and_scrape_annotations() -> None:
    """Workers: a volume for RocksDB, liveness on /healthz, readiness on /readyz, non-root,
    Prometheus annotations on the pods, settings and rules from config maps."""
    worker = find("StatefulSet", "ews-worker")
    pod = worker["spec"]["template"]
    container = pod["spec"]["containers"][0]
    settings = find("ConfigMap", "ews-settings")["data"]
    port = int(settings["EWS_WEB_PORT"])

    assert worker["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["data"] == settings["EWS_DATA_DIR"]
    assert settings["EWS_STORE"] == "rocksdb://"
    assert Path(settings["EWS_RULES_FILE"]).parent == Path(mounts["rules"])

    named_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert named_ports["http"] == port
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"

    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    check_settings_env(settings)
    secret_vars = {e["name"] for e in container["env"] if "valueFrom" in e}
    assert {"EWS_REDIS_PASSWORD", "EWS_KAFKA_SASL_PASSWORD"} <= secret_vars
    assert not [k for k in settings if "PASSWORD" in k], "secrets belong in the Secret"


def test_disruption_budget_covers_the_workers() -> None:
    """The PodDisruptionBudget selects the worker pods and lets one go at a time."""
    pdb = find("PodDisruptionBudget", "ews-worker")
    labels = find("StatefulSet", "ews-worker")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1


def test_rules_config_map_is_the_packaged_rules_file() -> None:
    """The ConfigMap's rules.toml is config/rules.toml, byte for byte."""
    rules = find("ConfigMap", "ews-rules")["data"]["rules.toml"]
    assert rules == (ROOT / "config/rules.toml").read_text()


def test_redis_runs_with_aof_and_a_password_from_the_secret() -> None:
    """Redis: AOF on a persistent volume, password from ews-secrets."""
    redis = find("StatefulSet", "redis")
    container = redis["spec"]["template"]["spec"]["containers"][0]
    args = " ".join(container["args"])
    assert "--appendonly yes" in args and "--requirepass $(REDIS_PASSWORD)" in args
    assert redis["spec"]["volumeClaimTemplates"]
    env = {e["name"]: e for e in container["env"]}
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "ews-secrets"


# --- Dockerfile -----------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(i for i, (ins, _) in enumerate(steps) if ins == "FROM")
    return steps[last_from:]


def test_image_is_multi_stage_on_python_slim() -> None:
    """Two stages, both python:3.11-slim; the final one copies the built virtualenv."""
    bases = [args.split()[0] for ins, args in dockerfile() if ins == "FROM"]
    assert len(bases) >= 2 and set(bases) == {"python:3.11-slim"}
    assert any(ins == "COPY" and args.startswith("--from=") for ins, args in final_stage())


def test_image_runs_as_a_non_root_user() -> None:
    """The final stage switches to a numeric, non-zero user."""
    users = [args for ins, args in final_stage() if ins == "USER"]
    assert users, "no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"} and user.isdigit()


def test_image_health_check_and_entrypoint() -> None:
    """HEALTHCHECK asks /healthz on the web port; the entrypoint is ``ews worker``."""
    stage = final_stage()
    health = [args for ins, args in stage if ins == "HEALTHCHECK"]
    assert len(health) == 1 and "/healthz" in health[0]
    env = " ".join(args for ins, args in stage if ins == "ENV")
    port = re.search(r"EWS_WEB_PORT=(\d+)", env)
    assert port and f":{port.group(1)}/healthz" in health[0]
    entrypoints = [args for ins, args in stage if ins == "ENTRYPOINT"]
    assert json.loads(entrypoints[-1]) == ["ews", "worker"]
    assert not [args for ins, args in stage if ins == "CMD"], "a CMD would be passed to the worker"


def test_image_sources_are_the_packaged_folders() -> None:
    """The build copies exactly the packages pyproject.toml lists (tests stay out)."""
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]
    copied = {
        shlex.split(args)[0] for ins, args in dockerfile() if ins == "COPY" and "--from" not in args
    }
    assert set(packages) <= copied
    assert "tests" not in copied
