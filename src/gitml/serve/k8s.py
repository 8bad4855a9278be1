"""Kubernetes and KServe manifests for ``gitml serve``, written by ``gitml deploy --target k8s DIR``.

The image bakes one promoted bundle in (``deploy/Dockerfile``), so its tag is the
registry version and a rollout is a git change to these files, which Argo CD or Flux
applies. Layout of DIR::

    kustomization.yaml      deployment.yaml + service.yaml (plain Kubernetes)
    deployment.yaml         gitml serve, probes on its own routes, non-root, read-only root
    service.yaml            port 80 -> the container's 8080
    kserve/kustomization.yaml   servingruntime.yaml + inferenceservice.yaml
    kserve/servingruntime.yaml  the same container as an Open Inference Protocol v2 runtime
    kserve/inferenceservice.yaml

KServe's resources sit in their own kustomization: ``kubectl apply -k DIR`` on a cluster
without KServe's CRDs would fail on them. Output is a function of the inputs (no
timestamps, keys in a fixed order), so a rerun rewrites the same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitml.errors import DeploymentError
from gitml.utils.atomic import write_text

PORT = 8080
READY, LIVE = "/v2/health/ready", "/ping"  # routes of gitml.serve.app
BUNDLE_DIR, LOG_DIR = "/opt/gitml/bundle", "/var/log/gitml"  # as deploy/Dockerfile places them
UID = 10001  # the image's user
# A Docker tag: what an image reference allows after the colon.
IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
IMAGE_REPO = re.compile(r"[a-z0-9]+([._/:-][a-z0-9]+)*")
QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?")


@dataclass(frozen=True)
class K8sSpec:
    """What the manifests are made of; one value per CLI option of ``gitml deploy --target k8s``."""

    model: str
    version: str
    image: str  # repository, without the tag: the tag is the version
    replicas: int = 1
    cpu: str = "1"  # request and limit (Guaranteed QoS: requests == limits)
    memory: str = "2Gi"

    def problems(self) -> list[str]:
        """Every value Kubernetes or a registry would refuse, one sentence each."""
        out = []
        if not IMAGE_TAG.fullmatch(self.version):
            out.append(f"version '{self.version}' cannot be an image tag (letters, digits, _ . -, "
                       "at most 128, not starting with . or -)")
        if not IMAGE_REPO.fullmatch(self.image):
            out.append(f"--image '{self.image}' is not an image repository (lowercase, e.g. ghcr.io/org/churn; "
                       "no tag: the version is the tag)")
        if not 0 <= self.replicas <= 1000:
            out.append(f"--replicas {self.replicas} is outside 0..1000")
        for option, value in (("--cpu", self.cpu), ("--memory", self.memory)):
            if not QUANTITY.fullmatch(value):
                out.append(f"{option} '{value}' is not a Kubernetes quantity (e.g. 500m, 1, 2Gi)")
        return out

    @property
    def name(self) -> str:
        """A DNS-1035 label: ``gitml-<model>``, lowercase, other characters as '-'."""
        return ("gitml-" + re.sub(r"[^a-z0-9-]+", "-", self.model.lower())).strip("-")[:63].rstrip("-")

    @property
    def image_ref(self) -> str:
        return f"{self.image}:{self.version}"


def manifests(spec: K8sSpec) -> dict[str, str]:
    """The files of DIR (relative path -> YAML text); raises DeploymentError naming every bad value."""
    problems = spec.problems()
    if problems:
        raise DeploymentError("Cannot write Kubernetes manifests: " + "; ".join(problems) + ".")
    docs = {"deployment.yaml": deployment(spec), "service.yaml": service(spec),
            "kserve/servingruntime.yaml": serving_runtime(spec),
            "kserve/inferenceservice.yaml": inference_service(spec)}
    files = {path: _yaml(doc) for path, doc in docs.items()}
    files["kustomization.yaml"] = _yaml(_kustomization(["deployment.yaml", "service.yaml"]))
    files["kserve/kustomization.yaml"] = _yaml(
        _kustomization(["servingruntime.yaml", "inferenceservice.yaml"]))
    return dict(sorted(files.items()))


def write_manifests(out: str | Path, spec: K8sSpec) -> list[Path]:
    """Write :func:`manifests` into ``out``, each file atomically; returns the paths written."""
    files = manifests(spec)
    written = []
    for relative, text in files.items():
        path = Path(out) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
        written.append(path)
    return written


def labels(spec: K8sSpec) -> dict[str, str]:
    return {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/version": spec.version,
            "app.kubernetes.io/part-of": "gitml", "app.kubernetes.io/managed-by": "gitml-deploy",
            "gitml/model": spec.model, "gitml/version": spec.version}


def container(spec: K8sSpec, name: str = "gitml-serve") -> dict[str, Any]:
    """The serving container; the image's ENTRYPOINT runs ``gitml serve --bundle`` on port 8080."""
    return {
        "name": name,
        "image": spec.image_ref,
        "imagePullPolicy": "IfNotPresent",  # the tag is immutable: one image per version
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": spec.cpu, "memory": spec.memory},
                      "limits": {"cpu": spec.cpu, "memory": spec.memory}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "request-log", "mountPath": LOG_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "timeoutSeconds": 2,
            "failureThreshold": failures}


def _volumes() -> list[dict[str, Any]]:
    # The root filesystem is read-only: the request log (serve.log_dir) and /tmp are emptyDirs.
    return [{"name": "request-log", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}]


def deployment(spec: K8sSpec) -> dict[str, Any]:
    served = container(spec)
    served["readinessProbe"] = _probe(READY, 5, 3)
    served["livenessProbe"] = _probe(LIVE, 10, 3)
    # Importing torch and verifying the bundle take seconds: liveness waits for the first /ping.
    served["startupProbe"] = _probe(LIVE, 2, 60)
    selector = {"app.kubernetes.io/name": spec.name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": spec.name, "labels": labels(spec)},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(spec)},
                "spec": {"automountServiceAccountToken": False, "terminationGracePeriodSeconds": 40,
                         "securityContext": {"runAsNonRoot": True, "fsGroup": UID},
                         "containers": [served], "volumes": _volumes()},
            },
        },
    }


def service(spec: K8sSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": spec.name, "labels": labels(spec)},
        "spec": {"type": "ClusterIP", "selector": {"app.kubernetes.io/name": spec.name},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]},
    }


def serving_runtime(spec: K8sSpec) -> dict[str, Any]:
    """A KServe ServingRuntime: the same container, speaking Open Inference Protocol v2 over HTTP."""
    runtime = container(spec, name="kserve-container")  # the name KServe gives the predictor's container
    return {
        "apiVersion": "serving.kserve.io/v1alpha1", "kind": "ServingRuntime",
        "metadata": {"name": spec.name, "labels": labels(spec)},
        "spec": {"supportedModelFormats": [{"name": "gitml", "version": "1", "autoSelect": False}],
                 "protocolVersions": ["v2"], "multiModel": False,
                 "containers": [runtime], "volumes": _volumes()},
    }


def inference_service(spec: K8sSpec) -> dict[str, Any]:
    """A KServe InferenceService whose predictor runs :func:`serving_runtime` (no storageUri: baked in)."""
    return {
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": spec.name, "labels": labels(spec)},
        "spec": {"predictor": {
            "minReplicas": spec.replicas, "maxReplicas": max(spec.replicas, 1),
            "model": {"modelFormat": {"name": "gitml", "version": "1"}, "runtime": spec.name,
                      "protocolVersion": "v2"},
        }},
    }


def _kustomization(resources: list[str]) -> dict[str, Any]:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}


def _yaml(doc: dict[str, Any]) -> str:
    header = "# Written by `gitml deploy --target k8s`; regenerate it rather than editing it.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=120)


def registered_version(repo: str | Path, model: str, version: str | None, stage: str = "prod") -> str:
    """``version`` when the registry has it, else (None) the version assigned to ``stage``.

    Raises DeploymentError naming the version (or stage) and the registered versions.
    """
    from gitml.registry.tags import find_version, list_versions, stage_version

    found = find_version(repo, model, version) if version else stage_version(repo, model, stage)
    if found is not None:
        return found.version
    known = ", ".join(v.version + (f" ({', '.join(v.stages)})" if v.stages else "")
                      for v in list_versions(repo, model)) or "none"
    what = (f"Version '{version}' of '{model}' is not in the registry" if version
            else f"No version of '{model}' is in stage '{stage}' of the registry")
    raise DeploymentError(f"{what} in {repo}, so there are no manifests to write. Registered: {known}.",
                          hint="name a registered version (--version), or promote one first: `gitml registry "
                               "show` lists them, `gitml promote --stage prod` assigns one.")
