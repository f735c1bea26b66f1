"""The Helm chart in docker/helm/bert-as-service as the tests see it: rendered offline by
Helm's own engine (helm-python-sdk binds Helm's Go library, no helm binary, no cluster; run
in a process of its own, tests/helm_engine.py), checked against the Kubernetes schemas, and
read the way the kubelet would read it.
"""

from __future__ import annotations

import base64
import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent.parent / "docker" / "helm" / "bert-as-service"
RELEASE = "demo"
NAMESPACE = "ml"
# kinds that are custom resources: not in kubernetes-validate's schemas
CUSTOM_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}


class HelmRefusedError(Exception):
    """Helm refused the chart or its values; ``kind`` names helm-python-sdk's error class
    (HelmRenderError, HelmValuesError, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def _helm(request: dict) -> Any:
    """One request to Helm's engine in its own process (tests/helm_engine.py)."""
    completed = subprocess.run(
        [sys.executable, "-m", "tests.helm_engine"],
        input=json.dumps({"chart": str(CHART), **request}),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=CHART.parents[2],
    )
    if completed.returncode != 0:
        raise RuntimeError(f"Helm's engine exited {completed.returncode}: {completed.stderr}")
    answer = json.loads(completed.stdout)
    if "error" in answer:
        raise HelmRefusedError(answer["error"], answer["message"])
    return answer["result"]


@functools.lru_cache(maxsize=None)
def _rendered(values_json: str) -> dict[str, str]:
    """Each template's output for these values (the same values render the same text)."""
    request = {"action": "render", "name": RELEASE, "namespace": NAMESPACE}
    return _helm({**request, "values": json.loads(values_json)})


def render(values: dict) -> list[dict]:
    """The manifests ``helm template demo CHART -n ml`` would print, as new objects."""
    documents = []
    for template, text in sorted(_rendered(json.dumps(values, sort_keys=True)).items()):
        if template.endswith("NOTES.txt"):
            continue
        documents += [doc for doc in yaml.safe_load_all(text) if doc]
    return documents


def lint(values: dict, kube_version: str) -> dict:
    """``helm lint --strict`` of the chart with these values: its report."""
    return _helm({"action": "lint", "values": values, "kube_version": kube_version})


def of_kind(documents: list[dict], kind: str) -> list[dict]:
    return [doc for doc in documents if doc["kind"] == kind]


def component(documents: list[dict], kind: str, name: str) -> dict:
    """The one object of ``kind`` whose component label is ``name`` (front or worker)."""
    found = [
        doc
        for doc in of_kind(documents, kind)
        if doc["metadata"]["labels"].get("app.kubernetes.io/component") == name
    ]
    assert len(found) == 1, f"expected one {kind} of the {name}, found {len(found)}"
    return found[0]


def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "each pod of the chart runs one container"
    return containers[0]


def command_line(deployment: dict) -> tuple[str, list[str]]:
    """The program a Deployment's container runs and its arguments, as strings."""
    spec = container(deployment)
    assert len(spec["command"]) == 1, spec["command"]
    return spec["command"][0], [str(arg) for arg in spec.get("args", [])]


def container_port(deployment: dict, port: int | str) -> int:
    """A port of the container as a number: named ports resolved as the kubelet does."""
    if isinstance(port, int):
        return port
    named = {entry["name"]: entry["containerPort"] for entry in container(deployment)["ports"]}
    return named[port]


def selects(selector: dict, deployment: dict) -> bool:
    """Whether a label selector (a Service's, or a matchLabels) picks a Deployment's pods."""
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(key) == value for key, value in selector.items())


def secret_value(documents: list[dict], name: str, key: str) -> str:
    """One entry of a rendered Secret, decoded (as a secretKeyRef hands it to a pod)."""
    (secret,) = [doc for doc in of_kind(documents, "Secret") if doc["metadata"]["name"] == name]
    return base64.b64decode(secret["data"][key]).decode()


def secret_files(documents: list[dict], deployment: dict, root: Path) -> None:
    """Write the Secret volumes a Deployment's pod mounts under ``root`` + mountPath, as the
    kubelet lays them out (``items`` pick keys and paths, else every key is a file)."""
    secrets = {doc["metadata"]["name"]: doc for doc in of_kind(documents, "Secret")}
    volumes = {
        volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]
    }
    for mount in container(deployment).get("volumeMounts", []):
        source = volumes[mount["name"]].get("secret")
        if source is None:
            continue
        data = secrets[source["secretName"]]["data"]
        items = source.get("items") or [{"key": key, "path": key} for key in data]
        for item in items:
            target = root / mount["mountPath"].lstrip("/") / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(data[item["key"]]))


def schema_problems(document: dict, kubernetes_version: str) -> list[str]:
    """What ``kubernetes-validate --strict`` says about one object (nothing when valid);
    custom resources go to their CRD's published schema instead (``crd_problems``)."""
    from kubernetes_validate import utils

    if (document["apiVersion"], document["kind"]) in CUSTOM_KINDS:
        return crd_problems(document)
    try:
        utils.validate(document, kubernetes_version, strict=True)
    except utils.ValidationError as error:
        path = "/".join(str(part) for part in error.path)
        return [f"{document['kind']} {path}: {error.message}"]
    except utils.SchemaNotFoundError as error:
        return [error.message]
    return []


def crd_problems(document: dict) -> list[str]:
    """Check a ScaledObject or ServiceMonitor against the models cloudcoil generates from
    KEDA's and Prometheus Operator's CRD schemas. Pydantic drops fields a model lacks and
    coerces types, so the object must also come back unchanged: that makes it strict."""
    from cloudcoil.models.keda.v1alpha1 import ScaledObject
    from cloudcoil.models.prometheus_operator.v1 import ServiceMonitor
    from pydantic import ValidationError

    model = {"ScaledObject": ScaledObject, "ServiceMonitor": ServiceMonitor}[document["kind"]]
    try:
        parsed = model.model_validate(document)
    except ValidationError as error:
        return [f"{document['kind']}: {error}"]
    again = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return [
        f"{document['kind']} {path}: {problem}" for path, problem in _differences(document, again)
    ]


def _differences(expected, actual, path: str = "") -> list[tuple[str, str]]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key in expected:
            if key not in actual:
                found.append((f"{path}/{key}", "not a field of the CRD's schema"))
            else:
                found += _differences(expected[key], actual[key], f"{path}/{key}")
        return found
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        found = []
        for index, (left, right) in enumerate(zip(expected, actual)):
            found += _differences(left, right, f"{path}/{index}")
        return found
    if expected != actual or type(expected) is not type(actual):
        return [(path, f"{expected!r} is not of the schema's type (read as {actual!r})")]
    return []
