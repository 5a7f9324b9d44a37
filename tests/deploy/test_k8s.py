"""deploy/k8s/, without a cluster: rendered, schema-checked, and held to the production profile.

The manifests are rendered as ``kubectl kustomize`` would (tests/deploy/manifests.py)
and every object is validated against the Kubernetes OpenAPI schemas bundled
with kubernetes-validate (strict: unknown fields are errors). The rest checks
what the schemas cannot: probes, resources and security contexts on every
container; no secret value anywhere; an Ingress exposing exactly what
config/prod/nginx/walletbot.conf.template proxies, with its limits; and an
environment that passes walletbot's own production start-up check.
"""

from __future__ import annotations

import copy
import math
import re
import secrets
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import kubernetes_validate
import pytest
import yaml

from tests.deploy.manifests import (BASE, K8S, KUBERNETES_VERSION, SECRETS_TEMPLATE, TRIAL,
                                    by_kind, containers, kustomization, load_documents,
                                    pod_metadata, pod_spec, quantity, render, strings, workloads)
from tests.prod.test_config import env_refs, nginx_locations, uncommented
from walletbot.settings import (DEV_ENV_FILE, PROJECT_ROOT, STRONG_SECRET_KEYS, check_startup,
                                read_env_file, secret_problem)

PROD = PROJECT_ROOT / "config" / "prod"
NGINX = PROD / "nginx" / "walletbot.conf.template"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
RESULTS = PROJECT_ROOT / "bench" / "RESULTS.md"
IMAGE_USER = 10001


@pytest.fixture(scope="module")
def base() -> List[Dict]:
    return render(BASE)


@pytest.fixture(scope="module")
def trial() -> List[Dict]:
    return render(TRIAL)


@pytest.fixture(scope="module")
def template() -> List[Dict]:
    return load_documents(SECRETS_TEMPLATE)


def rasa(objects: List[Dict]) -> Dict:
    return by_kind(objects, "Deployment")["walletbot-rasa"]


def main_container(workload: Dict) -> Dict:
    (container,) = containers(workload, init=False)
    return container


def configmap(objects: List[Dict]) -> Dict[str, str]:
    return by_kind(objects, "ConfigMap")["walletbot-config"]["data"]


# --- rendering and the schemas --------------------------------------------------------


def test_the_kustomizations_render_the_expected_objects(base, trial):
    kinds = {(obj["kind"], obj["metadata"]["name"]) for obj in base}
    assert {("Deployment", "walletbot-rasa"), ("Deployment", "walletbot-actions"),
            ("Service", "walletbot-rasa"), ("Service", "walletbot-actions"),
            ("HorizontalPodAutoscaler", "walletbot-rasa"), ("Job", "walletbot-bootstrap"),
            ("ConfigMap", "walletbot-config"), ("Namespace", "walletbot")} <= kinds
    assert {"Ingress", "NetworkPolicy", "PodDisruptionBudget", "CronJob"} <= {k for k, _ in kinds}
    # The trial is the base plus PostgreSQL and Redis; production has no database of its own.
    extra = {(o["kind"], o["metadata"]["name"]) for o in trial} - kinds
    assert {("StatefulSet", "walletbot-postgres"), ("StatefulSet", "walletbot-redis"),
            ("Service", "walletbot-postgres"), ("Service", "walletbot-redis")} <= extra
    assert not by_kind(base, "StatefulSet")
    # Everything but the Namespace lands in it, in both.
    for objects in (base, trial):
        for obj in objects:
            if obj["kind"] != "Namespace":
                assert obj["metadata"].get("namespace") == "walletbot", obj["metadata"]["name"]
    # The Secret template is a file to copy, never applied by a kustomization.
    for folder in (BASE, TRIAL):
        assert not any("secret" in str(entry).lower() for entry in kustomization(folder)["resources"])


def test_every_object_passes_the_kubernetes_schemas(base, trial, template):
    checked = 0
    for objects in (base, trial, template):
        for obj in objects:
            # Strict: a misspelt or misplaced field is an error, not ignored.
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            checked += 1
    assert checked == len(base) + len(trial) + len(template) > 40


def test_the_schema_check_catches_mistakes(base):
    deployment = copy.deepcopy(rasa(base))
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["minReadySeconds"] = "ten"
    misspelt = copy.deepcopy(deployment)
    main_container(misspelt)["readinessprobe"] = main_container(misspelt).pop("readinessProbe")
    missing_image = copy.deepcopy(deployment)
    del main_container(missing_image)["name"]
    for broken in (wrong_type, misspelt, missing_image):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "Nonsense", "metadata": {}},
                                     KUBERNETES_VERSION, strict=True)


def test_images_come_from_the_kustomization_with_a_tag(base, trial):
    for objects in (base, trial):
        for workload in workloads(objects):
            for container in containers(workload):
                image = container["image"]
                assert re.search(r":[\w][\w.-]*$", image.split("/")[-1]), image
                assert not image.endswith(":latest"), image
    images = {c["image"] for w in workloads(base) for c in containers(w)}
    assert images == {"registry.example.com/walletbot:set-me",
                      "registry.example.com/walletbot-model:set-me"}


# --- probes, resources, security contexts ---------------------------------------------


def test_every_container_has_requests_limits_and_a_locked_down_security_context(base, trial):
    for objects in (base, trial):
        for workload in workloads(objects):
            name = workload["metadata"]["name"]
            spec = pod_spec(workload)
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True, name
            assert isinstance(pod["runAsUser"], int) and pod["runAsUser"] > 0, name
            assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert spec["automountServiceAccountToken"] is False, name
            assert not any(k in spec for k in ("hostNetwork", "hostPID", "hostIPC")), name
            for volume in spec.get("volumes", []):
                assert set(volume) - {"name"} <= {"emptyDir", "secret", "configMap",
                                                  "persistentVolumeClaim"}, (name, volume)
            for container in containers(workload):
                where = f"{name}/{container['name']}"
                resources = container["resources"]
                for kind in ("cpu", "memory"):
                    request = quantity(resources["requests"][kind])
                    limit = quantity(resources["limits"][kind])
                    assert 0 < request <= limit, (where, kind)
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False, where
                assert context["readOnlyRootFilesystem"] is True, where
                assert context.get("privileged", False) is False, where
                assert context["capabilities"] == {"drop": ["ALL"]}, where
                assert "runAsUser" not in context or context["runAsUser"] > 0, where


def test_walletbot_pods_run_as_the_images_user_with_writable_scratch(base):
    # The Dockerfile's numeric USER (tests/deploy/test_image.py), and what it writes to.
    cache = re.search(r"RASA_CACHE_DIRECTORY=(\S+)", DOCKERFILE.read_text()).group(1)
    for workload in workloads(base):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsUser"] == IMAGE_USER
        assert spec["securityContext"]["runAsGroup"] == IMAGE_USER
        scratch = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in containers(workload):
            if not container["image"].split("/")[-1].startswith("walletbot:"):
                continue
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in scratch, container["name"]
            assert cache.startswith("/tmp/")
            assert mounts.get("/home/walletbot") in scratch, container["name"]


def test_long_running_containers_have_probes_on_health_routes(base, trial):
    for objects in (base, trial):
        for kind in ("Deployment", "StatefulSet"):
            for name, workload in by_kind(objects, kind).items():
                for container in containers(workload, init=False):
                    for probe in ("readinessProbe", "livenessProbe"):
                        assert probe in container, (name, probe)
                        found = container[probe]
                        assert "httpGet" in found or "exec" in found, (name, probe)
    ports = {p["name"]: p["containerPort"] for p in main_container(rasa(base))["ports"]}
    container = main_container(rasa(base))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "http"
    assert ports["http"] == 5005
    # Rasa answers / once the model is loaded; readiness asks a channel the Ingress serves.
    assert container["livenessProbe"]["httpGet"]["path"] == "/"
    readiness = container["readinessProbe"]["httpGet"]["path"]
    assert any(readiness.startswith(p) for p in proxied_locations()), readiness
    # Loading the model may take minutes on a busy node: the start-up probe waits that long.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 240
    actions = main_container(by_kind(base, "Deployment")["walletbot-actions"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert actions[probe]["httpGet"] == {"path": "/health", "port": "http"}


def measured_resident_mb(process: str) -> float:
    """The highest resident memory (MB) bench/RESULTS.md's second round gives for a process."""
    text = RESULTS.read_text(encoding="utf-8")
    section = text.split("## Performance, second round", 1)[1].split("\n## ", 1)[0]
    figures = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and re.fullmatch(process, cells[0]):
            figures += [float(c) for c in cells[1:] if re.fullmatch(r"\d+(\.\d+)?", c)]
    assert figures, f"no resident memory for {process!r} in {RESULTS}"
    return max(figures)


def test_requests_and_limits_cover_the_benchs_measured_memory(base):
    # Rasa: "bot rasa" (one process) and the soak's rasa-1 / rasa-2; the action server.
    rasa_mb = measured_resident_mb(r"bot rasa|rasa-\d")
    actions_mb = measured_resident_mb(r"action server|actions")
    assert 700 < rasa_mb < 1000 and 100 < actions_mb < 300  # the figures were found
    mb = 1e6
    resources = main_container(rasa(base))["resources"]
    assert quantity(resources["requests"]["memory"]) >= 1.2 * rasa_mb * mb
    assert quantity(resources["limits"]["memory"]) >= 1.5 * rasa_mb * mb
    resources = main_container(by_kind(base, "Deployment")["walletbot-actions"])["resources"]
    assert quantity(resources["requests"]["memory"]) >= 1.5 * actions_mb * mb
    # One Rasa process is bound to about one core (Python's interpreter lock).
    assert quantity(main_container(rasa(base))["resources"]["requests"]["cpu"]) == 1


def test_rasa_scales_on_cpu_with_at_least_two_replicas(base):
    hpa = by_kind(base, "HorizontalPodAutoscaler")["walletbot-rasa"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": "walletbot-rasa"}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert 50 <= metric["resource"]["target"]["averageUtilization"] <= 90
    # The autoscaler owns the count; a rolling update never drops below it.
    spec = rasa(base)["spec"]
    assert "replicas" not in spec
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    budgets = by_kind(base, "PodDisruptionBudget")
    assert budgets["walletbot-rasa"]["spec"]["minAvailable"] >= 1


# --- no secret in the manifests -------------------------------------------------------


SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|AES_KEY|APP_ID|ADMIN_URL|_DB_URL$")


def dev_secret_values() -> Set[str]:
    values = read_env_file(DEV_ENV_FILE)
    return {value for key, value in values.items() if SECRET_NAME.search(key) and value}


def looks_like_a_secret(token: str) -> bool:
    """A literal that walletbot's own production rules would accept as a random key."""
    return len(token) >= 24 and secret_problem(token) is None


def test_the_detector_finds_secrets():
    assert looks_like_a_secret(secrets.token_hex(32))
    assert looks_like_a_secret(secrets.token_urlsafe(32))
    assert not looks_like_a_secret("registry.example.com/walletbot-model")
    assert dev_secret_values() >= {"dev-rasa-token", "dev-desk-session-secret-for-local-use-only"}


def secret_problems(objects: List[Dict], *, text: str) -> List[str]:
    problems = []
    for value in dev_secret_values():
        if value in text:
            problems.append(f"the dev value {value!r}")
    if "scrypt$" in text:
        problems.append("a password hash")
    for where, value in strings(objects):
        for token in re.split(r"[\s\"'=,;@/:()$]+", value):
            if looks_like_a_secret(token):
                problems.append(f"{where}: {token!r} looks like a key")
        # Credentials in a URL: only $(VAR) references may stand for the password.
        for password in re.findall(r"://[^/\s:@]*:([^@\s]+)@", value):
            if not re.fullmatch(r"(\$\([A-Z_]+\))+", password):
                problems.append(f"{where}: a password in a URL")
    for workload in workloads(objects):
        for container in containers(workload):
            for item in container.get("env", []):
                if SECRET_NAME.search(item["name"]) and "value" in item:
                    problems.append(f"{container['name']}: {item['name']} is set literally")
    return problems


def test_no_secret_value_appears_in_the_rendered_manifests(base, trial):
    for objects in (base, trial):
        text = yaml.safe_dump_all(objects, allow_unicode=True)
        assert secret_problems(objects, text=text) == []
        # Secrets are created by the operator (secrets.template.yaml), never rendered.
        assert not [o for o in objects if o["kind"] == "Secret"]
    assert not {key for key in configmap(base) if SECRET_NAME.search(key)}


def test_the_secret_check_would_catch_a_leak(base):
    leaked = copy.deepcopy(base)
    deployment = rasa(leaked)
    env = main_container(deployment)["env"]
    env.append({"name": "RASA_AUTH_TOKEN", "value": secrets.token_hex(32)})
    env.append({"name": "TRACKER_DB_URL", "value": "postgresql://rasa:hunter2@db/rasa"})
    configmap(leaked)["NOTE"] = "dev-rasa-token"
    problems = secret_problems(leaked, text=yaml.safe_dump_all(leaked, allow_unicode=True))
    assert any("looks like a key" in p for p in problems)
    assert any("a password in a URL" in p for p in problems)
    assert any("RASA_AUTH_TOKEN is set literally" in p for p in problems)
    assert any("dev-rasa-token" in p for p in problems)


def test_the_secret_template_holds_no_value(template):
    assert {obj["kind"] for obj in template} == {"Secret"}
    for obj in template:
        assert "data" not in obj
        assert set(obj["stringData"].values()) == {""}, obj["metadata"]["name"]


def secret_refs(objects: List[Dict]) -> Dict[Tuple[str, str], bool]:
    """(secret, key) → optional, for every secretKeyRef and secret volume of the workloads."""
    refs: Dict[Tuple[str, str], bool] = {}
    for workload in workloads(objects):
        for container in containers(workload):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs[(ref["name"], ref["key"])] = ref.get("optional", False)
        for volume in pod_spec(workload).get("volumes", []):
            if "secret" in volume:
                for item in volume["secret"]["items"]:
                    refs[(volume["secret"]["secretName"], item["key"])] = False
    return refs


def test_every_secret_the_manifests_use_is_in_the_template(trial, template):
    templated = {(obj["metadata"]["name"], key) for obj in template for key in obj["stringData"]}
    used = secret_refs(trial)
    assert set(used) == templated  # and the template lists nothing unused
    assert [key for key, optional in used.items() if optional] == [("walletbot", "REST_CHANNEL_TOKEN")]
    # The superuser's URL reaches the bootstrap Job only.
    for workload in workloads(trial):
        names = {i["name"] for c in containers(workload) for i in c.get("env", [])}
        if workload["metadata"]["name"] != "walletbot-bootstrap":
            assert "POSTGRES_ADMIN_URL" not in names, workload["metadata"]["name"]


# --- the Ingress against nginx ----------------------------------------------------------


def nginx_text() -> str:
    return uncommented(NGINX)


def proxied_locations() -> Dict[str, str]:
    """nginx's proxied prefix locations → their bodies."""
    return {name: body for name, body in nginx_locations(nginx_text()).items()
            if "proxy_pass" in body}


def ingress_paths(objects: List[Dict]) -> List[Tuple[Dict, str, str, Dict]]:
    """(Ingress, path, pathType, backend) of every rule."""
    found = []
    for ingress in by_kind(objects, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                found.append((ingress, path["path"], path["pathType"], path["backend"]))
    return found


def routed(objects: List[Dict], request_path: str) -> List[str]:
    """The Ingress paths matching ``request_path`` (Kubernetes' Exact and Prefix rules)."""
    matches = []
    for _, path, kind, _ in ingress_paths(objects):
        if kind == "Exact":
            if request_path == path:
                matches.append(path)
        elif kind == "Prefix":
            prefix = [p for p in path.split("/") if p]
            given = [p for p in request_path.split("?")[0].split("/") if p]
            if given[:len(prefix)] == prefix:
                matches.append(path)
        else:
            matches.append(f"{path} ({kind}: not allowed)")
    return matches


def test_the_ingress_routes_exactly_what_nginx_proxies(base):
    allowed = set(proxied_locations())
    assert allowed == {"/webhooks/wechat/", "/webhooks/web/", "/webhooks/desk/", "/webhooks/rest/"}
    paths = ingress_paths(base)
    assert {path for _, path, kind, _ in paths if kind == "Prefix"} == allowed
    for ingress, path, kind, backend in paths:
        assert kind in ("Prefix", "Exact"), path
        assert any(path.startswith(prefix) for prefix in allowed), path
        # Always the Rasa Service's channel port: never the action server, never metrics.
        assert backend == {"service": {"name": "walletbot-rasa", "port": {"name": "http"}}}, path
    for ingress in by_kind(base, "Ingress").values():
        assert ingress["spec"]["ingressClassName"] == "nginx"
        assert "defaultBackend" not in ingress["spec"]
        for annotation in ingress["metadata"].get("annotations", {}):
            # Snippets add nginx locations; rewrites and regexes change what a path reaches.
            assert not re.search(r"snippet|rewrite-target|use-regex|app-root|default-backend|"
                                 r"redirect|server-alias|mirror", annotation), annotation
    service = by_kind(base, "Service")["walletbot-rasa"]["spec"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["ports"]] == [("http", 5005, "http")]


@pytest.mark.parametrize("path, public", [
    ("/webhooks/wechat/webhook", True), ("/webhooks/wechat", True),
    ("/webhooks/web/socket.io/?EIO=4&transport=polling", True), ("/webhooks/web/chat", True),
    ("/webhooks/desk/api/tickets", True), ("/webhooks/desk/login", True),
    ("/webhooks/rest/webhook", True),
    # Rasa's HTTP API and everything else.
    ("/", False), ("/conversations/u1/tracker", False), ("/model", False), ("/status", False),
    ("/version", False), ("/metrics", False), ("/webhooks", False), ("/webhooks/", False),
    ("/webhooks/callback/webhook", False), ("/webhooks/restx/webhook", False),
    ("/health", False),
])
def test_what_the_ingress_routes(base, path, public):
    assert bool(routed(base, path)) is public, routed(base, path)


def nginx_limits() -> Dict[str, Dict[str, Any]]:
    """Per Ingress path: nginx's rate (per unit), burst and connections for it.

    Prefix paths take their location's per-address zone; the strict zones keyed by
    a ``map "$request_method $uri"`` apply to the exact paths the map names.
    """
    text = nginx_text()
    zones = {name: (key, int(rate), unit) for key, name, rate, unit in re.findall(
        r"limit_req_zone\s+(\S+)\s+zone=(\w+):\S+\s+rate=(\d+)r/([sm]);", text)}
    strict_paths = dict(re.findall(r'map\s+"\$request_method \$uri"\s+(\$\w+)\s*\{\s*'
                                   r'"~\^POST (\S+?)/\*\$"', text))
    limits: Dict[str, Dict[str, Any]] = {}
    for location, body in proxied_locations().items():
        (connections,) = re.findall(r"limit_conn\s+\w+\s+(\d+);", body)
        for zone, burst in re.findall(r"limit_req\s+zone=(\w+)\s+burst=(\d+)", body):
            key, rate, unit = zones[zone]
            entry = {"rate": rate, "unit": unit, "burst": int(burst),
                     "connections": int(connections)}
            if key == "$binary_remote_addr":
                limits[location] = entry
            else:
                path = strict_paths[key]
                assert path.startswith(location)
                limits[path] = limits[path + "/"] = entry
    return limits


def test_the_ingress_limits_follow_nginxs(base):
    limits = nginx_limits()
    # Both strict zones (desk logins, new web sessions) were found, beside the four locations.
    assert {"/webhooks/desk/login", "/webhooks/web/token"} < set(limits)
    assert len(limits) == 8
    body_size = re.search(r"client_max_body_size\s+(\S+);", nginx_text()).group(1)
    default_timeout = re.search(r"^\s*proxy_read_timeout\s+(\d+)s;", nginx_text(), re.M).group(1)
    covered = set()
    for ingress, path, _, _ in ingress_paths(base):
        notes = ingress["metadata"]["annotations"]
        ann = {k.split("/", 1)[1]: v for k, v in notes.items()}
        expected = limits[path]
        rate_key = "limit-rps" if expected["unit"] == "s" else "limit-rpm"
        assert int(ann[rate_key]) == expected["rate"], path
        other = "limit-rpm" if rate_key == "limit-rps" else "limit-rps"
        assert other not in ann, path
        # ingress-nginx's burst is rate x multiplier: nginx's, rounded up to a multiple.
        assert int(ann["limit-burst-multiplier"]) == math.ceil(expected["burst"] / expected["rate"])
        assert int(ann["limit-connections"]) == expected["connections"], path
        assert ann["proxy-body-size"] == body_size
        location = next(p for p in proxied_locations() if path.startswith(p))
        own_timeout = re.search(r"proxy_read_timeout\s+(\d+)s;", proxied_locations()[location])
        assert ann["proxy-read-timeout"] == (
            own_timeout.group(1) if own_timeout and path == location else default_timeout), path
        covered.add(path)
    assert covered == set(limits)


def test_only_the_web_chat_is_sticky_like_nginx(base):
    cookie = re.search(r'Set-Cookie "(\w+)=\$wb_route; Path=(\S+); HttpOnly; SameSite=(\w+)"',
                       nginx_text())
    assert cookie
    name, path, same_site = cookie.groups()
    for ingress, ingress_path, _, _ in ingress_paths(base):
        ann = {k.split("/", 1)[1]: v for k, v in ingress["metadata"]["annotations"].items()}
        if ingress_path.startswith("/webhooks/web/"):
            assert ann["affinity"] == "cookie" and ann["affinity-mode"] == "persistent"
            assert ann["session-cookie-name"] == name
            assert ann["session-cookie-path"] == path
            assert ann["session-cookie-samesite"] == same_site
            assert ann["session-cookie-secure"] == "true"  # TLS terminates at the Ingress
        else:
            assert "affinity" not in ann, ingress_path  # nginx: least_conn, any replica
    assert "walletbot_rasa_sticky" in proxied_locations()["/webhooks/web/"]


def test_metrics_stay_inside_the_cluster(base):
    for name in ("walletbot-rasa", "walletbot-actions"):
        deployment = by_kind(base, "Deployment")[name]
        ports = {p["name"]: p["containerPort"] for p in main_container(deployment)["ports"]}
        annotations = pod_metadata(deployment)["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == ports["metrics"]
        key = "METRICS_PORT" if name == "walletbot-rasa" else "ACTION_METRICS_PORT"
        assert int(configmap(base)[key]) == ports["metrics"]
        # No Service names the metrics port, so no Ingress can route to it.
        service = by_kind(base, "Service")[name]["spec"]
        assert all(p["targetPort"] == "http" and p["port"] != ports["metrics"]
                   for p in service["ports"])
    # Only Prometheus' namespace reaches a metrics port, only the controller's the channels.
    policies = by_kind(base, "NetworkPolicy")
    assert policies["walletbot-default-deny-ingress"]["spec"] == {"podSelector": {},
                                                                   "policyTypes": ["Ingress"]}
    for name, channel, metrics in (("walletbot-rasa", 5005, 9005), ("walletbot-actions", 5055, 9055)):
        sources = {rule["ports"][0]["port"]: rule["from"][0]
                   for rule in policies[name]["spec"]["ingress"]}
        assert set(sources) == {channel, metrics}
        assert sources[metrics] == {"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "monitoring"}}}
    rasa_sources = {r["ports"][0]["port"]: r["from"][0]
                    for r in policies["walletbot-rasa"]["spec"]["ingress"]}
    assert rasa_sources[5005] == {"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "ingress-nginx"}}}


# --- the environment against walletbot's settings ---------------------------------------


def provided(objects: List[Dict], container: Dict) -> Dict[str, Optional[str]]:
    """Variables a container gets: ConfigMap values, literal values, None for a Secret's."""
    env: Dict[str, Optional[str]] = {}
    for source in container.get("envFrom", []):
        env.update(by_kind(objects, "ConfigMap")[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value")
    return env


def dockerfile_env() -> Dict[str, str]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    env: Dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line))
    return env


def pod_environment(objects: List[Dict], container: Dict,
                    secret_values: Dict[Tuple[str, str], str]) -> Dict[str, str]:
    """The environment a container would start with: the image's, then the pod's."""
    env = dict(dockerfile_env())
    for source in container.get("envFrom", []):
        env.update(by_kind(objects, "ConfigMap")[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        if "value" in item:
            # Kubernetes fills in $(VAR) from the variables before it.
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)),
                                       item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secret_values[(ref["name"], ref["key"])]
    return env


def generated_secrets(template: List[Dict]) -> Dict[Tuple[str, str], str]:
    values = {}
    for obj in template:
        for key in obj["stringData"]:
            values[(obj["metadata"]["name"], key)] = secrets.token_hex(32)
    values[("walletbot-services", "REDIS_HOST")] = "redis.internal"
    values[("walletbot-services", "REDIS_PORT")] = "6379"
    values[("walletbot-services", "REDIS_DB")] = "0"
    return values


def test_rasa_gets_every_variable_rasa_and_the_start_up_check_read(base):
    container = main_container(rasa(base))
    needed = env_refs(PROJECT_ROOT / "credentials.yml") | env_refs(PROD / "endpoints.yml")
    needed |= {"WALLETBOT_ENV", "WALLET_DB_URL", "REDIS_URL", *STRONG_SECRET_KEYS}
    needed |= {"DESK_AGENTS_FILE", "WECHAT_TOKEN", "WECHAT_APP_ID", "WECHAT_APP_SECRET",
               "WECHAT_AES_KEY"}
    missing = needed - set(provided(base, container))
    assert not missing, sorted(missing)
    command = " ".join(container["command"])
    assert "python -m walletbot.settings &&" in command  # the production start-up check
    assert "--endpoints config/prod/endpoints.yml" in command
    assert '--auth-token "$RASA_AUTH_TOKEN"' in command
    assert "--port 5005" in command and "--interface 0.0.0.0" in command


def test_the_pods_environment_passes_the_production_start_up_check(base, template, capsys):
    container = main_container(rasa(base))
    values = generated_secrets(template)
    env = pod_environment(base, container, values)
    assert env["WALLETBOT_IN_IMAGE"] == "1" and env["WALLETBOT_ENV"] == "production"
    assert env["REDIS_URL"] == f"redis://:{values[('walletbot-services', 'REDIS_PASSWORD')]}@redis.internal:6379/0"
    assert check_startup(env) == 0, capsys.readouterr().err
    # With the template's empty values the pod refuses to start.
    empty = {key: "" for key in values}
    assert check_startup(pod_environment(base, container, empty)) == 1
    err = capsys.readouterr().err
    assert "RASA_AUTH_TOKEN is not set" in err and "WECHAT_AES_KEY" in err


def test_the_desk_agents_file_is_the_mounted_secret(base):
    deployment = rasa(base)
    container = main_container(deployment)
    path = Path(provided(base, container)["DESK_AGENTS_FILE"])
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    (name,) = [n for n, v in volumes.items() if v.get("secret", {}).get("secretName")
               == "walletbot-desk-agents"]
    assert mounts[name]["mountPath"] == str(path.parent) and mounts[name]["readOnly"] is True
    assert volumes[name]["secret"]["items"] == [{"key": "agents.yml", "path": path.name}]
    assert path.name != "agents.dev.yml"


def test_the_model_reaches_rasa_from_the_model_image(base):
    deployment = rasa(base)
    container = main_container(deployment)
    model = re.search(r"--model (\S+)", " ".join(container["command"])).group(1)
    assert model == configmap(base)["MODEL"] == "models/walletbot.tar.gz"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    served = "/app/" + model  # the image's WORKDIR is /app
    assert mounts["/app/models"]["readOnly"] is True
    copy_step = next(c for c in containers(deployment) if c["name"] == "model")
    assert copy_step["image"].split("/")[-1].startswith("walletbot-model:")
    assert copy_step["command"] == ["cp", "/model/walletbot.tar.gz", served]
    assert {m["mountPath"]: m["name"] for m in copy_step["volumeMounts"]} == {
        "/app/models": mounts["/app/models"]["name"]}
    model_dockerfile = (K8S / "model.Dockerfile").read_text()
    assert "COPY walletbot.tar.gz /model/walletbot.tar.gz" in model_dockerfile


def test_the_action_server_gets_its_variables(base):
    deployment = by_kind(base, "Deployment")["walletbot-actions"]
    env = provided(base, main_container(deployment))
    assert {"WALLETBOT_ENV", "WALLET_DB_URL", "SANIC_HOST"} <= set(env)
    assert env["SANIC_HOST"] == "0.0.0.0"
    # Rasa calls it through its Service.
    url = configmap(base)["ACTION_ENDPOINT_URL"]
    service = by_kind(base, "Service")["walletbot-actions"]
    assert url == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}/webhook"
    assert "--port 5055" in " ".join(main_container(deployment)["command"])


# Keys of config/prod/prod.env that differ here on purpose (config.yaml says why).
CHANGED = {"SANIC_HOST": "0.0.0.0", "METRICS_HOST": "0.0.0.0", "WEB_TRUSTED_PROXIES": "10.0.0.0/8"}
LEFT_OUT = {"NGINX_HOST", "NGINX_PORT", "RASA_PORT_2", "METRICS_PORT_2",
            "REDIS_HOST", "REDIS_PORT", "REDIS_DB"}
ADDED = {"ACTION_ENDPOINT_URL", "HANDOFF_SERVICE_HOURS", "HANDOFF_TIMEZONE"}


def test_the_configmap_mirrors_config_prod_prod_env(base):
    prod = read_env_file(PROD / "prod.env")
    data = configmap(base)
    assert LEFT_OUT | set(CHANGED) <= set(prod)
    for key, value in prod.items():
        if key in LEFT_OUT:
            assert key not in data, key
        else:
            assert data[key] == CHANGED.get(key, value), key
    assert set(data) - set(prod) == ADDED
    # The added ones take docker-compose.yml's defaults.
    compose = (PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for key in ("HANDOFF_SERVICE_HOURS", "HANDOFF_TIMEZONE"):
        assert f"${{{key}:-{data[key]}}}" in compose, key
    # Every value is a string (a ConfigMap holds nothing else).
    assert all(isinstance(v, str) for v in data.values())


# --- the order: bootstrap before the replicas ------------------------------------------


def test_the_bootstrap_job_runs_before_any_replica(base):
    job = by_kind(base, "Job")["walletbot-bootstrap"]
    (container,) = containers(job)
    assert container["command"] == ["python", "scripts/prod/bootstrap.py", "setup"]
    assert {"POSTGRES_ADMIN_URL", "TRACKER_DB_URL", "WALLET_DB_URL"} <= set(provided(base, container))
    assert pod_spec(job)["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] >= 3
    # Every long-running walletbot pod waits for setup's tables before its server starts.
    for name, deployment in by_kind(base, "Deployment").items():
        waits = [c for c in pod_spec(deployment)["initContainers"]
                 if c["command"][:3] == ["python", "scripts/prod/bootstrap.py", "wait"]]
        assert len(waits) == 1, name
        (wait,) = waits
        only = [arg for flag, arg in zip(wait["command"], wait["command"][1:]) if flag == "--only"]
        databases = set(only) or {"TRACKER_DB_URL", "WALLET_DB_URL"}
        assert databases <= set(provided(base, wait)), name
        # ... and checks every database its server uses.
        server_uses = {key for key in ("TRACKER_DB_URL", "WALLET_DB_URL")
                       if key in provided(base, main_container(deployment))}
        assert server_uses <= databases, name
        assert "POSTGRES_ADMIN_URL" not in provided(base, wait)
