"""deploy/k8s/pytorchjob.yaml, the PyTorchJob docs/distributed.md ships, checked offline.

kubernetes-validate has no schema for Kubeflow's CRDs, and the training-operator's CRD is not
vendored here, so: each replica's pod template is validated (strict) as a core v1
PodTemplate by kubernetes-validate, the PyTorchJob fields around it are checked against
the kubeflow.org/v1 PyTorchJobSpec's field names and values, and the container's command
is parsed by torchrun's own argument parser.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from torch.distributed.run import get_args_parser

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "deploy" / "k8s" / "pytorchjob.yaml"
K8S_VERSION = "1.33.0"
# kubeflow.org/v1 PyTorchJob: the fields of its spec, replica specs and run policy.
SPEC_FIELDS = {"elasticPolicy", "nprocPerNode", "pytorchReplicaSpecs", "runPolicy"}
REPLICA_TYPES = {"Master", "Worker"}
REPLICA_FIELDS = {"replicas", "restartPolicy", "template"}
RESTART_POLICIES = {"Always", "OnFailure", "Never", "ExitCode"}
RUN_POLICY_FIELDS = {"activeDeadlineSeconds", "backoffLimit", "cleanPodPolicy", "managedBy", "schedulingPolicy",
                     "suspend", "ttlSecondsAfterFinished"}
CLEAN_POD_POLICIES = {"All", "Running", "None"}
# What the operator looks a replica's container and port up by, and the variables it sets.
CONTAINER, PORT = "pytorch", "pytorchjob-port"
OPERATOR_ENV = {"PET_NNODES": "2", "PET_NPROC_PER_NODE": "4", "PET_NODE_RANK": "1", "MASTER_ADDR": "gitml-train-master-0",
                "MASTER_PORT": "23456"}


def job_problems(job: dict) -> list[str]:
    """Every way ``job`` is not a valid PyTorchJob running `gitml train` under torchrun."""
    problems = []
    if (job.get("apiVersion"), job.get("kind")) != ("kubeflow.org/v1", "PyTorchJob"):
        problems.append(f"not a kubeflow.org/v1 PyTorchJob: {job.get('apiVersion')} {job.get('kind')}")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", str(job.get("metadata", {}).get("name", ""))):
        problems.append("metadata.name is not a DNS-1123 label")
    spec = job.get("spec", {})
    problems += [f"spec.{key} is not a PyTorchJobSpec field" for key in sorted(set(spec) - SPEC_FIELDS)]
    if not isinstance(spec.get("nprocPerNode"), str):
        problems.append("spec.nprocPerNode must be a string (a number, auto, cpu or gpu)")
    run_policy = spec.get("runPolicy", {})
    problems += [f"spec.runPolicy.{key} is not a RunPolicy field" for key in sorted(set(run_policy) - RUN_POLICY_FIELDS)]
    if run_policy.get("cleanPodPolicy", "None") not in CLEAN_POD_POLICIES:
        problems.append(f"spec.runPolicy.cleanPodPolicy must be one of {sorted(CLEAN_POD_POLICIES)}")
    replicas = spec.get("pytorchReplicaSpecs", {})
    if set(replicas) - REPLICA_TYPES or replicas.get("Master", {}).get("replicas") != 1:
        problems.append(f"spec.pytorchReplicaSpecs needs one Master (and Workers), got {sorted(replicas)}")
    for kind, replica in replicas.items():
        problems += [f"{kind}.{key} is not a ReplicaSpec field" for key in sorted(set(replica) - REPLICA_FIELDS)]
        if replica.get("restartPolicy") not in RESTART_POLICIES:
            problems.append(f"{kind}.restartPolicy must be one of {sorted(RESTART_POLICIES)}")
        problems += container_problems(kind, replica.get("template", {}), spec.get("nprocPerNode"))
    return problems


def container_problems(kind: str, template: dict, nproc: object) -> list[str]:
    """The pod template is a valid PodTemplateSpec, its container the one the operator finds,
    and its command torchrun starting `gitml train` with the operator's variables."""
    try:
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": kind.lower()},
                                      "template": template}, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{kind}.template: {exc.message}"]
    containers = {c["name"]: c for c in template.get("spec", {}).get("containers", [])}
    if CONTAINER not in containers or PORT not in {p.get("name") for p in containers[CONTAINER].get("ports", [])}:
        return [f"{kind}: no container {CONTAINER!r} with a port named {PORT!r}"]
    container = containers[CONTAINER]
    args = container.get("args", [])
    unknown = sorted({name for arg in args for name in re.findall(r"\$\((\w+)\)", arg)} - set(OPERATOR_ENV))
    if container.get("command") != ["torchrun"] or unknown:
        return [f"{kind}: the command must be torchrun, with only the operator's variables ({unknown})"]
    parsed = get_args_parser().parse_args([re.sub(r"\$\((\w+)\)", lambda m: OPERATOR_ENV[m.group(1)], a) for a in args])
    problems = []
    if (parsed.module, parsed.training_script, parsed.training_script_args[:1]) != (True, "gitml", ["train"]):
        problems.append(f"{kind}: torchrun does not start `gitml train`")
    if (parsed.nnodes, parsed.nproc_per_node) != ("2", "4") or str(nproc) != "4":
        problems.append(f"{kind}: nnodes and nproc-per-node must come from the operator (PET_NNODES, PET_NPROC_PER_NODE)")
    gpus = int(container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))
    if str(gpus) != str(nproc):
        problems.append(f"{kind}: {gpus} GPUs for {nproc} ranks per pod")
    return problems


@pytest.fixture(scope="module")
def job() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def test_the_shipped_job_is_valid(job):
    assert job_problems(job) == []
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert sum(r["replicas"] for r in replicas.values()) == 2  # the 2 machines the header promises


def test_only_the_master_pod_mounts_the_models_volume(job):
    mounts = {kind: {m["mountPath"] for c in r["template"]["spec"]["containers"] for m in c.get("volumeMounts", [])}
              for kind, r in job["spec"]["pytorchReplicaSpecs"].items()}
    assert "/srv/project/models" in mounts["Master"] and "/srv/project/models" not in mounts["Worker"]


@pytest.mark.parametrize(("where", "value", "found"), [
    (("spec", "pytorchReplicaSpecs", "Master", "template", "spec", "containers", 0, "imagePullPolicyy"), "Always",
     "Master.template: Additional properties are not allowed"),
    (("spec", "pytorchReplicaSpecs", "Chief"), {"replicas": 1}, "needs one Master"),
    (("spec", "nprocPerNode"), 4, "spec.nprocPerNode must be a string"),
    (("spec", "runPolicy", "cleanPodPolicy"), "Sometimes", "cleanPodPolicy must be one of"),
    (("spec", "pytorchReplicaSpecs", "Worker", "template", "spec", "containers", 0, "name"), "trainer",
     "Worker: no container 'pytorch'"),
    (("spec", "pytorchReplicaSpecs", "Worker", "template", "spec", "containers", 0, "args", 0), "--nnodes=$(NODES)",
     "only the operator's variables (['NODES'])"),
    (("spec", "pytorchReplicaSpecs", "Worker", "template", "spec", "containers", 0, "args", 7), "gitmll",
     "torchrun does not start `gitml train`"),
])
def test_a_broken_copy_is_caught(job, where, value, found):
    broken = copy.deepcopy(job)
    node = broken
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    assert any(found in problem for problem in job_problems(broken)), job_problems(broken)
