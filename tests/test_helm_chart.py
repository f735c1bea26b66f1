"""The Helm chart (docker/helm/bert-as-service), validated offline.

Rendered by Helm's engine (helm-python-sdk), over a matrix of values; every object checked
with kubernetes-validate --strict for several Kubernetes versions (custom resources against
their CRDs' models); the invariants that matter checked on the output: no ZeroMQ port behind
a multi-replica Service, the worker port open to workers only, command lines that the real
parsers accept, probes on real proxy routes, and autoscaling on series /metrics really has.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from bert_serving.server.model.fingerprint import VECTOR_SETTINGS
from tests.helm_chart import (
    CHART,
    CUSTOM_KINDS,
    NAMESPACE,
    HelmRefusedError,
    command_line,
    component,
    container,
    container_port,
    lint,
    of_kind,
    render,
    schema_problems,
    secret_files,
    secret_value,
    selects,
)

if importlib.util.find_spec("helm_python") is None:  # imported by tests/helm_engine.py only
    pytest.skip(
        "helm-python-sdk is not installed (pip install -r tests/requirements.txt)",
        allow_module_level=True,
    )
pytest.importorskip("kubernetes_validate", reason="pip install -r tests/requirements.txt")

# the chart says kubeVersion >=1.25; kubernetes-validate has schemas up to 1.37
KUBERNETES_VERSIONS = ("1.25", "1.31", "1.37")
GUIDE = CHART.parents[2] / "docs" / "deploy.md"  # the chart's guide, values table included
BIN = Path(sys.executable).parent
START_SECONDS = 120


def curve_keys(directory: Path) -> dict:
    """CURVE values made of real key pairs (zmq.auth certificate files)."""
    import zmq.auth

    for name in ("front", "worker"):
        zmq.auth.create_certificates(str(directory), name)

    def text(name: str) -> str:
        return (directory / name).read_text()

    return {
        "frontSecretKey": text("front.key_secret"),
        "frontPublicKey": text("front.key"),
        "workerSecretKey": text("worker.key_secret"),
        "workerPublicKey": text("worker.key"),
    }


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict:
    return curve_keys(tmp_path_factory.mktemp("curve"))


def with_keys(values: dict, keys: dict) -> dict:
    """``values`` with the key pairs filled in where CURVE is on without an existing Secret
    (a client key too where ``clientKeys`` asks for one)."""
    curve = values.get("curve", {})
    if not curve.get("enabled") or curve.get("existingSecret"):
        return values
    filled = {**keys, **curve}
    if curve.get("clientKeys") == CLIENT_KEYS:
        filled["clientKeys"] = {"alice": keys["frontPublicKey"]}  # any real public key
    return {**values, "curve": filled}


GPU = {
    "gpu": {"enabled": True, "count": 2},
    "nodeSelector": {"nvidia.com/gpu.present": "true"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
}
MODEL = {
    "volume": {"persistentVolumeClaim": {"claimName": "bert-base", "readOnly": True}},
    "args": ["-max_seq_len", 64, "-pooling_strategy", "CLS_TOKEN", "-precision", "float32"],
}
CLIENT_KEYS = {"alice": "filled in by with_keys"}
CURVE = {"enabled": True}
CURVE_WITH_CLIENTS = {"enabled": True, "clientKeys": CLIENT_KEYS}
# the values sets every check runs over: id -> values
MATRIX = {
    "cpu": {},
    "cpu-hpa": {"autoscaling": {"enabled": True}},
    "gpu": {"worker": GPU},
    "gpu-hpa-curve": {"worker": GPU, "autoscaling": {"enabled": True}, "curve": CURVE},
    "cpu-curve-clients-model": {"curve": CURVE_WITH_CLIENTS, "model": MODEL},
    "gpu-keda-servicemonitor-apikey": {
        "worker": GPU,
        "keda": {"enabled": True, "minReplicas": 0},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "http": {"apiKey": "s3cret"},
    },
    "cpu-no-networkpolicy-no-pdb": {
        "networkPolicy": {"enabled": False},
        "podDisruptionBudget": {"enabled": False},
        "worker": {"replicas": 5, "numWorker": 2},
    },
    "cpu-everything": {
        "model": MODEL,
        "curve": CURVE_WITH_CLIENTS,
        "autoscaling": {"enabled": True, "maxReplicas": 20},
        "serviceMonitor": {"enabled": True},
        "http": {"apiKey": "s3cret"},
        "networkPolicy": {"clients": [{"namespaceSelector": {"matchLabels": {"team": "ml"}}}]},
        "front": {"numWorker": 1, "extraArgs": ["-http_max_connect", 32]},
        "worker": {"extraArgs": ["-max_batch_size", 128]},
    },
    "existing-secrets": {
        "curve": {
            "enabled": True,
            "existingSecret": "my-curve",
            "existingClientKeysSecret": "my-clients",
        },
        "http": {"existingSecret": "my-http", "existingSecretKey": "token"},
        "serviceMonitor": {"enabled": True},
    },
}


@pytest.fixture(scope="module")
def rendered(keys) -> dict[str, list[dict]]:
    return {name: render(with_keys(values, keys)) for name, values in MATRIX.items()}


# ---- schemas ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values_id", list(MATRIX))
def test_every_object_is_valid(rendered, values_id, version):
    problems = [
        problem
        for document in rendered[values_id]
        for problem in schema_problems(document, version)
    ]
    assert problems == []


def test_the_kubernetes_validate_command_agrees(rendered, tmp_path):
    """The command as a user runs it on ``helm template`` output: every built-in object
    passes --strict; for the custom resources it only warns that it has no schema, which
    is why they are checked against their CRDs' models above."""
    documents = rendered["gpu-keda-servicemonitor-apikey"]
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text(yaml.safe_dump_all(documents))
    versions = [word for version in KUBERNETES_VERSIONS for word in ("-k", version)]
    done = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", *versions, str(manifests)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    custom = [doc for doc in documents if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS]
    assert len(custom) == 2
    passed = [line for line in lines if line.startswith("INFO") and " passed " in line]
    warned = [line for line in lines if line.startswith("WARN")]
    assert len(passed) == (len(documents) - len(custom)) * len(KUBERNETES_VERSIONS)
    assert len(warned) == len(custom) * len(KUBERNETES_VERSIONS)
    assert all("Couldn't find schema for kind" in line for line in warned)


def test_the_matrix_covers_every_kind(rendered):
    kinds = {document["kind"] for documents in rendered.values() for document in documents}
    assert kinds == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ScaledObject",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Secret",
        "ServiceMonitor",
    }


def test_the_strict_checks_refuse_what_is_wrong(rendered):
    """A field no schema has, or a wrong type, is found, in built-in and custom kinds."""
    documents = rendered["gpu-keda-servicemonitor-apikey"]
    for kind in ("Deployment", "ScaledObject", "ServiceMonitor"):
        doctored = copy.deepcopy(of_kind(documents, kind)[0])
        doctored["spec"]["replicaz"] = 3
        assert any("replicaz" in problem for problem in schema_problems(doctored, "1.37")), kind
    scaled = copy.deepcopy(of_kind(documents, "ScaledObject")[0])
    scaled["spec"]["maxReplicaCount"] = "8"
    assert schema_problems(scaled, "1.37")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_helm_lint_is_clean(keys, version):
    """``helm lint --strict`` (warnings are errors) with the fullest values set."""
    values = with_keys(MATRIX["cpu-everything"], keys)
    report = lint(values, kube_version=f"v{version}.0")
    serious = [message for message in report["messages"] if message["severity"] >= 2]
    assert (report["errors"], serious) == ([], [])


# ---- one front, never balanced -----------------------------------------------------------


def zeromq_ports(documents: list[dict]) -> set[int]:
    """The front's ZeroMQ ports, read from its real command line."""
    from bert_serving.server.args import get_args_parser

    _, args = command_line(component(documents, "Deployment", "front"))
    parsed = get_args_parser().parse_args(args)
    return {parsed.port, parsed.port_out, parsed.port_worker}


def autoscaled(documents: list[dict]) -> set[str]:
    """Names of the Deployments an HPA or a KEDA ScaledObject may scale."""
    targets = [
        doc["spec"]["scaleTargetRef"] for doc in of_kind(documents, "HorizontalPodAutoscaler")
    ]
    targets += [doc["spec"]["scaleTargetRef"] for doc in of_kind(documents, "ScaledObject")]
    return {target["name"] for target in targets}


def balanced_zeromq_ports(documents: list[dict]) -> list[str]:
    """Services that would spread a ZeroMQ port over several pods."""
    ports = zeromq_ports(documents)
    scaled = autoscaled(documents)
    found = []
    for service in of_kind(documents, "Service"):
        for deployment in of_kind(documents, "Deployment"):
            if not selects(service["spec"]["selector"], deployment):
                continue
            name = deployment["metadata"]["name"]
            if deployment["spec"].get("replicas", 1) == 1 and name not in scaled:
                continue
            for entry in service["spec"]["ports"]:
                port = container_port(deployment, entry.get("targetPort", entry["port"]))
                if port in ports:
                    found.append(f"{service['metadata']['name']}:{port} -> {name}")
    return found


@pytest.mark.parametrize("values_id", list(MATRIX))
def test_no_zeromq_port_behind_several_pods(rendered, values_id):
    documents = rendered[values_id]
    front = component(documents, "Deployment", "front")
    assert front["spec"]["replicas"] == 1
    assert front["spec"]["strategy"] == {"type": "Recreate"}
    assert front["metadata"]["name"] not in autoscaled(documents)
    service = component(documents, "Service", "front")
    assert selects(service["spec"]["selector"], front)
    assert balanced_zeromq_ports(documents) == []


def test_the_balance_check_can_fail(rendered):
    """The check above flags a front with two replicas, and one an autoscaler targets."""
    documents = copy.deepcopy(rendered["cpu"])
    component(documents, "Deployment", "front")["spec"]["replicas"] = 2
    assert len(balanced_zeromq_ports(documents)) == 3  # requests, results, workers
    documents = copy.deepcopy(rendered["cpu-hpa"])
    hpa = of_kind(documents, "HorizontalPodAutoscaler")[0]
    hpa["spec"]["scaleTargetRef"]["name"] = component(documents, "Deployment", "front")["metadata"][
        "name"
    ]
    assert balanced_zeromq_ports(documents)


def test_autoscalers_scale_the_workers_only(rendered):
    for values_id in ("cpu-hpa", "gpu-hpa-curve", "gpu-keda-servicemonitor-apikey"):
        documents = rendered[values_id]
        worker = component(documents, "Deployment", "worker")
        assert autoscaled(documents) == {worker["metadata"]["name"]}
        assert "replicas" not in worker["spec"]  # the autoscaler owns the count
    worker = component(rendered["cpu-no-networkpolicy-no-pdb"], "Deployment", "worker")
    assert worker["spec"]["replicas"] == 5
    assert autoscaled(rendered["cpu"]) == set()


def test_hpa_and_keda_are_exclusive():
    with pytest.raises(HelmRefusedError, match="exclusive") as refused:
        render({"autoscaling": {"enabled": True}, "keda": {"enabled": True}})
    assert refused.value.kind == "HelmRenderError"


@pytest.mark.parametrize(
    "values",
    [
        {"worker": {"replica": 3}},  # a typo
        {"ports": {"http": 70000}},
        {"worker": {"gpu": {"count": 0}}},
        {"front": {"service": {"type": "Headless"}}},
    ],
    ids=["typo", "port", "gpus", "service-type"],
)
def test_values_the_schema_refuses(values):
    with pytest.raises(HelmRefusedError, match="schema") as refused:
        render(values)
    assert refused.value.kind == "HelmValuesError"


def test_curve_without_keys_is_refused():
    with pytest.raises(HelmRefusedError, match=r"curve\.frontSecretKey") as refused:
        render({"curve": {"enabled": True}})
    assert refused.value.kind == "HelmRenderError"


# ---- the worker port: workers only --------------------------------------------------------


def worker_port_openings(documents: list[dict]) -> list[str]:
    """Who, besides this release's worker pods, a NetworkPolicy lets reach the worker port."""
    front = component(documents, "Deployment", "front")
    worker = component(documents, "Deployment", "worker")
    worker_port = container_port(front, "workers")
    found = []
    for policy in of_kind(documents, "NetworkPolicy"):
        if not selects(policy["spec"]["podSelector"]["matchLabels"], front):
            continue
        for rule in policy["spec"].get("ingress", []):
            ports = [container_port(front, entry["port"]) for entry in rule.get("ports", [])]
            if ports and worker_port not in ports:
                continue
            peers = rule.get("from")
            if not peers:
                found.append("anyone")
            for peer in peers or []:
                pods = peer.get("podSelector", {}).get("matchLabels")
                if set(peer) != {"podSelector"} or pods is None or not selects(pods, worker):
                    found.append(str(peer))
    return found


@pytest.mark.parametrize("values_id", list(MATRIX))
def test_only_workers_reach_the_worker_port(rendered, values_id):
    documents = rendered[values_id]
    policies = of_kind(documents, "NetworkPolicy")
    if values_id == "cpu-no-networkpolicy-no-pdb":
        assert policies == []
        return
    assert worker_port_openings(documents) == []
    worker_policy = component(documents, "NetworkPolicy", "worker")
    assert worker_policy["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in worker_policy["spec"]  # the workers listen on nothing
    # and the workers are let in: a rule admits the worker port from their pods
    front = component(documents, "Deployment", "front")
    rules = component(documents, "NetworkPolicy", "front")["spec"]["ingress"]
    assert any(
        container_port(front, entry["port"]) == container_port(front, "workers")
        for rule in rules
        for entry in rule["ports"]
        if rule.get("from")
    )


def test_the_network_check_can_fail(rendered):
    documents = copy.deepcopy(rendered["cpu"])
    rules = component(documents, "NetworkPolicy", "front")["spec"]["ingress"]
    rules[1]["ports"].append({"port": "workers", "protocol": "TCP"})
    assert worker_port_openings(documents) == ["anyone"]


def test_disruption_budget_covers_the_workers(rendered):
    documents = rendered["cpu"]
    budget = of_kind(documents, "PodDisruptionBudget")[0]
    assert selects(
        budget["spec"]["selector"]["matchLabels"], component(documents, "Deployment", "worker")
    )
    assert not selects(
        budget["spec"]["selector"]["matchLabels"], component(documents, "Deployment", "front")
    )
    assert of_kind(rendered["cpu-no-networkpolicy-no-pdb"], "PodDisruptionBudget") == []


# ---- command lines ---------------------------------------------------------------------------


# what front and workers must agree on: the model, and what the front's fingerprint compares
SHARED_ENCODING = ("model_dir", "tuned_model_dir", *VECTOR_SETTINGS)


@pytest.mark.parametrize("values_id", list(MATRIX))
def test_command_lines_parse_with_the_real_parsers(rendered, values_id):
    from bert_serving.server.args import get_args_parser, get_worker_parser

    documents = rendered[values_id]
    front, worker = (component(documents, "Deployment", name) for name in ("front", "worker"))
    front_program, front_args = command_line(front)
    worker_program, worker_args = command_line(worker)
    assert (front_program, worker_program) == ("bert-serving-start", "bert-serving-worker")
    start = get_args_parser().parse_args(front_args)
    joins = get_worker_parser().parse_args(worker_args)
    # the workers find the front through its Service, on its worker port
    service = component(documents, "Service", "front")
    assert joins.ip == service["metadata"]["name"]
    by_port = {entry["port"]: entry["targetPort"] for entry in service["spec"]["ports"]}
    assert container_port(front, by_port[joins.port_worker]) == start.port_worker
    assert start.http_port == container_port(front, "http")
    # the same encoding on both sides, or the front refuses the workers
    for name in SHARED_ENCODING:
        assert getattr(joins, name) == getattr(start, name), name


def test_gpu_workers(rendered):
    from bert_serving.server.args import get_worker_parser

    worker = component(rendered["gpu"], "Deployment", "worker")
    spec = container(worker)
    assert spec["image"] == "bert-as-service:2.0.0-gpu"
    assert spec["resources"]["limits"]["nvidia.com/gpu"] == GPU["gpu"]["count"]
    pod = worker["spec"]["template"]["spec"]
    assert (pod["nodeSelector"], pod["tolerations"]) == (GPU["nodeSelector"], GPU["tolerations"])
    parsed = get_worker_parser().parse_args(command_line(worker)[1])
    assert (parsed.num_worker, parsed.cpu) == (GPU["gpu"]["count"], False)
    cpu_worker = component(rendered["cpu"], "Deployment", "worker")
    assert container(cpu_worker)["image"] == "bert-as-service:2.0.0"
    assert "nvidia.com/gpu" not in container(cpu_worker)["resources"]["limits"]
    assert get_worker_parser().parse_args(command_line(cpu_worker)[1]).cpu is True
    # the front computes nothing by default, so it always runs the CPU image
    assert container(component(rendered["gpu"], "Deployment", "front"))["image"] == (
        "bert-as-service:2.0.0"
    )


@pytest.mark.parametrize("values_id", list(MATRIX))
def test_every_pod_keeps_the_server_cache_where_the_server_looks(rendered, values_id, monkeypatch):
    """Converted models and tokenizer tables (cache_folder.py) in an emptyDir mounted where
    the image's user (home /home/bert) has its cache: a restarted container reads them."""
    from bert_serving.server.cache_folder import CACHE_ENV, cache_folder

    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", "/home/bert")
    for name in ("front", "worker"):
        deployment = component(rendered[values_id], "Deployment", name)
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        (mount,) = [m for m in container(deployment)["volumeMounts"] if m["name"] == "cache"]
        assert mount["mountPath"] == str(cache_folder()) and not mount.get("readOnly")
        assert volumes["cache"] == {"name": "cache", "emptyDir": {}}


def test_secrets_as_mounted_hold_what_the_arguments_need(keys, hf_model_dir, tmp_path):
    """Lay the Secrets out as the kubelet would, then run the servers' own argument checks,
    which load the CURVE key files: the mounts, items and arguments must agree."""
    from bert_serving.server.args import (
        get_args_parser,
        get_worker_parser,
        validate_args,
        validate_worker_args,
    )

    values = {
        "curve": {**CURVE_WITH_CLIENTS, "mountPath": str(tmp_path / "curve")},
        "model": {"volume": {"emptyDir": {}}, "mountPath": str(hf_model_dir)},
    }
    documents = render(with_keys(values, keys))
    front, worker = (component(documents, "Deployment", name) for name in ("front", "worker"))
    for deployment in (front, worker):
        secret_files(documents, deployment, Path("/"))
    start = get_args_parser().parse_args(command_line(front)[1])
    joins = get_worker_parser().parse_args(command_line(worker)[1])
    assert validate_args(start) == []
    assert validate_worker_args(joins) == []
    assert start.curve_client_keys and start.curve_worker_keys and joins.curve_secret_key
    # the front lets in exactly the chart's worker key, and the workers trust the front's
    import zmq.auth

    worker_public, _ = zmq.auth.load_certificate(joins.curve_secret_key)
    assert set(zmq.auth.load_certificates(start.curve_worker_keys)) == {worker_public}
    front_public, _ = zmq.auth.load_certificate(start.curve_secret_key)
    assert zmq.auth.load_certificate(joins.curve_server_key)[0] == front_public


def test_the_api_key_stays_out_of_the_command_line(rendered):
    documents = rendered["gpu-keda-servicemonitor-apikey"]
    front = component(documents, "Deployment", "front")
    assert "s3cret" not in " ".join(command_line(front)[1])
    (env,) = container(front)["env"]
    assert env["name"] == "BERT_SERVING_HTTP_API_KEY"
    reference = env["valueFrom"]["secretKeyRef"]
    monitor = of_kind(documents, "ServiceMonitor")[0]
    assert monitor["spec"]["endpoints"][0]["authorization"]["credentials"] == reference
    assert secret_value(documents, reference["name"], reference["key"]) == "s3cret"
    existing = component(rendered["existing-secrets"], "Deployment", "front")
    assert container(existing)["env"][0]["valueFrom"]["secretKeyRef"] == {
        "name": "my-http",
        "key": "token",
    }
    assert of_kind(rendered["existing-secrets"], "Secret") == []


# ---- probes and metrics against the real proxy ------------------------------------------------


def probe_paths(front: dict) -> set[tuple[str, int]]:
    spec = container(front)
    probes = [spec[name] for name in ("startupProbe", "readinessProbe", "livenessProbe")]
    return {(p["httpGet"]["path"], container_port(front, p["httpGet"]["port"])) for p in probes}


def test_probe_paths_are_routes_of_the_proxy(hf_model_dir):
    """The proxy's real Flask app, built from the chart's own front arguments."""
    from bert_serving.server.args import get_args_parser
    from bert_serving.server.http.app import create_app
    from bert_serving.server.http.backend import ServerConnection
    from bert_serving.server.http.settings import ProxySettings

    documents = render({"model": {"volume": {"emptyDir": {}}, "mountPath": str(hf_model_dir)}})
    front = component(documents, "Deployment", "front")
    settings = ProxySettings.from_args(get_args_parser().parse_args(command_line(front)[1]))
    connection = ServerConnection(settings.server, settings.threads)
    try:
        routes = create_app(settings, connection).url_map.bind("localhost")
        for path, port in probe_paths(front):
            assert port == settings.http_port
            assert routes.match(path, method="GET")[0], path
    finally:
        connection.close()


def adapter_rule() -> dict:
    """The prometheus-adapter rule the chart's guide tells users to install."""
    blocks = re.findall(r"```yaml\n(.*?)```", GUIDE.read_text(), flags=re.S)
    rules = [yaml.safe_load(block) for block in blocks if "seriesQuery" in block]
    assert len(rules) == 1, "the guide shows one prometheus-adapter rule"
    (rule,) = rules[0]["rules"]
    return rule


def named_series(promql: str) -> set[str]:
    """The metric names a PromQL expression reads (this project's all start with bert_)."""
    return set(re.findall(r"\b(bert_[a-z0-9_]+)", promql))


def autoscaling_series(documents: list[dict]) -> set[str]:
    names = set()
    for hpa in of_kind(documents, "HorizontalPodAutoscaler"):
        names |= {metric["object"]["metric"]["name"] for metric in hpa["spec"]["metrics"]}
    for scaled in of_kind(documents, "ScaledObject"):
        for trigger in scaled["spec"]["triggers"]:
            names |= named_series(trigger["metadata"]["query"])
    return names


def test_the_adapter_rule_serves_the_hpa_metric(rendered):
    rule = adapter_rule()
    hpa_metric = autoscaling_series(rendered["cpu-hpa"])
    assert {rule["name"]["as"]} == hpa_metric
    assert named_series(rule["seriesQuery"]) == hpa_metric
    assert re.fullmatch(rule["name"]["matches"], next(iter(hpa_metric)))
    assert set(rule["resources"]["overrides"]) == {"namespace", "service"}
    keda_query = of_kind(rendered["gpu-keda-servicemonitor-apikey"], "ScaledObject")[0]
    query = keda_query["spec"]["triggers"][0]["metadata"]["query"]
    front = component(rendered["gpu-keda-servicemonitor-apikey"], "Service", "front")
    assert f'service="{front["metadata"]["name"]}"' in query
    assert f'namespace="{NAMESPACE}"' in query


def scraped_series(exposition: str) -> set[str]:
    """Series names of a Prometheus text exposition (samples, not comments)."""
    return {
        re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }


def wait_for(url: str, process: subprocess.Popen, **options) -> requests.Response:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode}"
        try:
            answer = requests.get(url, timeout=5, **options)
            if answer.status_code == 200:
                return answer
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer 200 within {START_SECONDS} s")


def launch(deployment: dict, documents: list[dict], replace: dict[str, str]) -> subprocess.Popen:
    """Run a Deployment's container command here, with its env from the rendered Secrets."""
    program, args = command_line(deployment)
    args = [replace.get(arg, arg) for arg in args]
    env = dict(os.environ)
    for variable in container(deployment).get("env", []):
        reference = variable["valueFrom"]["secretKeyRef"]
        env[variable["name"]] = secret_value(documents, reference["name"], reference["key"])
    return subprocess.Popen([str(BIN / program), *args], env=env, stdout=subprocess.DEVNULL)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@pytest.mark.slow
def test_a_front_and_a_worker_from_the_chart_serve_every_autoscaling_series(
    keys, hf_model_dir, tmp_path
):
    """Start the chart's front and one worker from their rendered command lines (CURVE, API
    key from its Secret), probe /health where the probes do, scrape /metrics as the
    ServiceMonitor does, and find every series the HPA, KEDA and the adapter rule name."""
    from bert_serving.server.network import free_ports

    requests_port, results_port, workers_port, http_port = free_ports(4)
    values = {
        "ports": {
            "requests": requests_port,
            "results": results_port,
            "workers": workers_port,
            "http": http_port,
        },
        "model": {
            "volume": {"emptyDir": {}},
            "mountPath": str(hf_model_dir),
            "args": ["-precision", "float32"],
        },
        "curve": {**CURVE, "mountPath": str(tmp_path / "curve")},
        "http": {"apiKey": "chart-test-key"},
        "serviceMonitor": {"enabled": True},
    }
    values = with_keys(values, keys)
    with_hpa = render({**values, "autoscaling": {"enabled": True}})
    with_keda = render({**values, "keda": {"enabled": True}})
    names = autoscaling_series(with_hpa) | autoscaling_series(with_keda)
    names |= named_series(adapter_rule()["seriesQuery"])
    assert names == {"bert_server_queued_parts"}

    front = component(with_hpa, "Deployment", "front")
    worker = component(with_hpa, "Deployment", "worker")
    for deployment in (front, worker):
        secret_files(with_hpa, deployment, Path("/"))
    front_service = component(with_hpa, "Service", "front")["metadata"]["name"]
    front_process = launch(front, with_hpa, {})
    worker_process = None
    try:
        for path, port in probe_paths(front):
            wait_for(f"http://127.0.0.1:{port}{path}", front_process)
        # the Service name resolves in a cluster only: here the front is on the loopback
        worker_process = launch(worker, with_hpa, {front_service: "127.0.0.1"})
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            health = wait_for(f"http://127.0.0.1:{http_port}/health", front_process).json()
            if health["workers_serving"] == 1:
                break
            assert worker_process.poll() is None, f"the worker exited {worker_process.returncode}"
            time.sleep(1)
        assert health["workers_serving"] == 1

        endpoint = of_kind(with_hpa, "ServiceMonitor")[0]["spec"]["endpoints"][0]
        credentials = endpoint["authorization"]["credentials"]
        token = secret_value(with_hpa, credentials["name"], credentials["key"])
        port = container_port(front, endpoint["port"])
        url = f"http://127.0.0.1:{port}{endpoint['path']}"
        assert requests.get(url, timeout=10).status_code == 401  # the key is needed
        scrape = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert scrape.status_code == 200
        series = scraped_series(scrape.text)
        assert names <= series, names - series
        assert "bert_server_workers_serving 1.0" in scrape.text
        encoded = requests.post(
            f"http://127.0.0.1:{http_port}/encode",
            json={"id": 1, "texts": ["hello world", "a chart"]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert encoded.status_code == 200, encoded.text
        assert len(encoded.json()["result"]) == 2
    finally:
        codes = [stop(process) for process in (worker_process, front_process) if process]
    assert codes == [0] * len(codes)


# ---- the values table ---------------------------------------------------------------------


def documented_values() -> set[str]:
    return set(re.findall(r"^\| `([A-Za-z.]+)` \|", GUIDE.read_text(), flags=re.M))


def undocumented(values: dict, documented: set[str], prefix: str = "") -> list[str]:
    missing = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if path in documented:
            continue
        if isinstance(value, dict) and value:
            missing += undocumented(value, documented, f"{path}.")
        else:
            missing.append(path)
    return missing


def test_every_value_is_in_the_guides_table():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = documented_values()
    assert undocumented(values, documented) == []

    def exists(path: str) -> bool:
        node = values
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    assert [path for path in documented if not exists(path)] == []


def test_the_values_schema_names_only_real_values():
    """values.schema.json refuses unknown keys: it must not know keys values.yaml lacks."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())

    def unknown(node: dict, schema_node: dict, prefix: str = "") -> list[str]:
        found = []
        for key, child in schema_node.get("properties", {}).items():
            if key == "global":  # Helm's own
                continue
            if key not in node:
                found.append(f"{prefix}{key}")
            elif child.get("additionalProperties") is False:
                found += unknown(node[key], child, f"{prefix}{key}.")
        return found

    assert unknown(values, schema) == []
