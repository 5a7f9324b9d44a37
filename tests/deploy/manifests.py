"""Reading deploy/k8s/ without a cluster: kustomize's rendering, for the fields it uses.

The kustomizations keep to ``resources``, ``namespace`` and ``images``
(tests/deploy/test_k8s.py refuses any other field), and this renders exactly
those, as ``kubectl kustomize`` does: resources in order (folders recursively),
then the images' new names and tags on every container, then the namespace on
every namespaced object.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import yaml

from walletbot.settings import PROJECT_ROOT

K8S = PROJECT_ROOT / "deploy" / "k8s"
BASE = K8S / "base"
TRIAL = K8S / "trial"
SECRETS_TEMPLATE = K8S / "secrets.template.yaml"
# The Kubernetes release whose schemas validate the objects (the newest that
# kubernetes-validate 1.28.3, the last release for Rasa 3.6's jsonschema, bundles).
KUBERNETES_VERSION = "1.28"

KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "namespace", "resources", "images"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
                  "StorageClass", "IngressClass", "CustomResourceDefinition"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}

Object = Dict[str, Any]


def load_documents(path: Path) -> List[Object]:
    """Every non-empty YAML document of ``path``."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def kustomization(folder: Path) -> Dict[str, Any]:
    return yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))


def pod_spec(obj: Object) -> Dict[str, Any]:
    """The pod spec of a workload."""
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def pod_metadata(obj: Object) -> Dict[str, Any]:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"].get("metadata", {})
    return obj["spec"]["template"].get("metadata", {})


def containers(obj: Object, *, init: bool = True) -> List[Dict[str, Any]]:
    """The containers of a workload's pod (init containers first, when asked)."""
    spec = pod_spec(obj)
    return [*(spec.get("initContainers", []) if init else []), *spec.get("containers", [])]


def _set_image(image: str, rules: List[Dict[str, str]]) -> str:
    name, tag = (image.rsplit(":", 1) + [""])[:2] if ":" in image.split("/")[-1] else (image, "")
    for rule in rules:
        if rule["name"] == name:
            name = rule.get("newName", name)
            tag = rule.get("newTag", tag)
    return f"{name}:{tag}" if tag else name


def render(folder: Path) -> List[Object]:
    """What ``kubectl kustomize <folder>`` prints, as objects (order aside)."""
    config = kustomization(folder)
    unknown = set(config) - KUSTOMIZATION_FIELDS
    assert not unknown, f"{folder}: kustomization fields this renderer does not implement: {unknown}"
    objects: List[Object] = []
    for entry in config.get("resources", []):
        path = (folder / entry).resolve()
        objects.extend(render(path) if path.is_dir() else load_documents(path))
    rules = config.get("images", [])
    for obj in objects:
        if obj["kind"] in WORKLOADS:
            for container in containers(obj):
                container["image"] = _set_image(container["image"], rules)
    namespace = config.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
    return objects


def by_kind(objects: List[Object], kind: str) -> Dict[str, Object]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def workloads(objects: List[Object]) -> List[Object]:
    return [obj for obj in objects if obj["kind"] in WORKLOADS]


def strings(value: Any, where: str = "") -> Iterator[Tuple[str, str]]:
    """Every string in a parsed object, with its path."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key, f"{where}.{key}(key)") if isinstance(key, str) else iter(())
            yield from strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{where}[{index}]")


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_FACTORS = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
            "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40}


def quantity(value: Any) -> float:
    """A Kubernetes quantity (``250m``, ``"1"``, ``1536Mi``) as a number (cores, bytes)."""
    match = _QUANTITY.match(str(value))
    assert match, f"not a quantity: {value!r}"
    return float(match.group(1)) * _FACTORS[match.group(2)]
