"""Serving commands: serve, deploy, simulate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gitml.cli.base import ModelOpt, OptPath, app, path_opt
from gitml.errors import UsageError


@app.command("serve")
def serve(
    bundle: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--bundle", help="Bundle folder to serve (verified first); repeat as NAME=DIR to serve several.")] = None,
    deployment: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--deployment", help="Deployment folder or s3:// URL (current.json + versions/, written by gitml deploy); "
        "repeat as NAME=LOCATION to serve several.")] = None,
    stage: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--stage", help="Registry stage to serve, e.g. prod (its bundle is fetched through DVC).")] = None,
    model: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--model", help="With --stage: a registry model whose stage to serve; repeat to serve several "
        "[registry.model].")] = None,
    follow: Annotated[bool, typer.Option(
        "--follow/--no-follow", help="Poll the deployment or stage and swap new versions in, with no downtime.")] = False,
    host: Annotated[Optional[str], typer.Option(help="Bind address [serve.host, 127.0.0.1].")] = None,  # noqa: UP045
    port: Annotated[Optional[int], typer.Option(help="Port [serve.port, 8080].")] = None,  # noqa: UP045
    workers: Annotated[Optional[int], typer.Option(help="Worker processes [serve.workers, 1].")] = None,  # noqa: UP045
    log_dir: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--log-dir", help="Request and feedback log folder or s3:// URL [serve.log_dir, logs].")] = None,
    params: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--params", help="Parameters file for serve.* and registry.* defaults (params.yaml when present).")] = None,
    repo: Annotated[Path, typer.Option(help="Git repository holding the registry (with --stage).")] = Path("."),
) -> None:
    """Serve a bundle over HTTP: MLflow /invocations, Open Inference Protocol v2, /metrics.

    /invocations takes MLflow's JSON formats, CSV or an Arrow IPC stream; OIP v2 infer
    takes JSON or binary tensor data. Large batches are cheapest as Arrow or binary tensors.

    Every answered row goes to the request log. With --follow the server polls its source
    every serve.follow_interval_seconds and swaps new versions in without dropping a
    request; SIGHUP reloads at once. Flags override params.yaml (serve.*).

    Several models: name each (--bundle churn=DIR --bundle fraud=DIR, --deployment NAME=URL, or
    --stage prod --model churn --model fraud); OIP addresses /v2/models/NAME, /invocations
    the default model (serve.default_model, else the first) or the one the X-Gitml-Model
    header names; each model follows, swaps and logs (LOG_DIR/NAME/) on its own.

    Example: gitml serve --deployment /srv/gitml/model --follow --port 8080
    """
    from gitml import api

    api.serve(bundle=bundle, deployment=deployment, stage=stage, models=model, follow=follow, repo=repo,
              params_file=params, host=host, port=port, workers=workers, log_dir=log_dir)


@app.command("deploy")
def deploy(
    target: Annotated[str, typer.Option(
        help="Deployment folder or s3:// URL that gitml serve --deployment follows, or `k8s` with DIR: "
             "Kubernetes manifests.")],
    version: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Version to publish or point at, e.g. v1.2.0 (with --target k8s: default, the prod stage's).")] = None,
    manifests: Annotated[Optional[Path], typer.Argument(  # noqa: UP045
        metavar="[DIR]", help="With --target k8s: folder (or deploy repository) to write the manifests into.")] = None,
    image: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="With --target k8s: image repository, tagged with the version [gitml-<registry.model>].")] = None,
    replicas: Annotated[int, typer.Option(help="With --target k8s: serving replicas.")] = 1,
    cpu: Annotated[str, typer.Option(help="With --target k8s: CPU request and limit per replica.")] = "1",
    memory: Annotated[str, typer.Option(help="With --target k8s: memory request and limit per replica.")] = "2Gi",
    bundle: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Bundle folder to publish; omit it to point back at an already published version.")] = None,
    gate: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Gate verdict that must admit the bundle (default: reports/gate.json at the registered "
             "VERSION's commit, else in the working tree).")] = None,
    params: Annotated[Path, typer.Option(help="Composed parameters (registry.model).")] = Path("params.yaml"),
    allow_failed_gate: Annotated[bool, typer.Option(
        "--allow-failed-gate", help="Publish even when the gate verdict does not admit the bundle "
        "(says so on stderr).")] = False,
    canary: Annotated[Optional[int], typer.Option(metavar="PERCENT", help="Write deploy/<model>.yaml: PERCENT of "  # noqa: UP045
                      "requests to --version, the rest to the stable one; --traffic applies it.")] = None,
    shadow: Annotated[Optional[str], typer.Option(metavar="VERSION", help="With --canary: a version that "  # noqa: UP045
                      "predicts every request too, logged (LOG_DIR/shadow), never answered.")] = None,
    traffic: Annotated[Optional[Path], typer.Option(metavar="FILE", help="Apply a committed traffic file "  # noqa: UP045
                       "(deploy/<model>.yaml): publish the versions it names, then its split.")] = None,
    publish_only: Annotated[bool, typer.Option("--publish-only", help="Publish --bundle, serve as before.")] = False,
    stage: Annotated[Optional[str], typer.Option(help="With --traffic: when the file sends every request to "  # noqa: UP045
                     "one version, assign it this registry stage (e.g. prod) once applied.")] = None,
    push: Annotated[bool, typer.Option(help="With --stage: push the stage tag to registry.remote.")] = False,
    model: ModelOpt = None,
) -> None:
    """Publish a bundle into a deployment folder and make it current (atomically).

    Copies the bundle to TARGET/versions/VERSION, verifies it, then replaces TARGET/current.json.
    The bundle is refused unless a passing gate verdict names it (its manifest sha256): the one
    at the registered VERSION's commit, or --gate FILE, or reports/gate.json; --allow-failed-gate
    publishes anyway. Without --bundle, points current.json at a published version (a rollback).
    Servers following TARGET swap within serve.follow_interval_seconds. Canary and shadow
    (docs/delivery.md): --canary 10 --version V [--shadow S] writes deploy/<model>.yaml, a pull
    request editing it promotes or rolls back, --traffic FILE applies it (--stage prod: and
    assigns prod to a version the file gives 100%). With --target k8s DIR, writes Kubernetes and
    KServe manifests for a registered version into DIR (docs/kubernetes.md).

    Example: gitml deploy --bundle models/bundle --target /srv/gitml/model --version v1.2.0
    """
    from gitml import api

    if manifests is not None or str(target) == "k8s":
        return _deploy_k8s(target, manifests, version, bundle, image, replicas, cpu, memory, params, model)
    if traffic is not None or canary is not None or shadow is not None or stage is not None or push:
        return _deploy_traffic(target, version, bundle, gate, allow_failed_gate, params, model, canary, shadow,
                               traffic, publish_only, stage, push)
    if version is None or (publish_only and bundle is None):
        raise UsageError("Give --version (to publish or point at, e.g. v1.2.0), and --bundle with --publish-only.")
    summary, ignored = api.deploy(target, version, bundle, gate, allow_failed_gate, params, model=model,
                                  point=not publish_only)
    _warn_and_echo(summary, ignored, bundle)


def _deploy_traffic(target: str, version: str | None, bundle: Path | None, gate: Path | None, allow_failed_gate: bool,
                    params: Path, model: str | None, canary: int | None, shadow: str | None, traffic: Path | None,
                    publish_only: bool, stage: str | None, push: bool) -> None:
    from gitml import api

    named = params if params.is_file() or params != Path("params.yaml") else None  # none: the defaults
    if traffic is not None:
        if version or bundle or canary is not None or shadow or publish_only:
            raise UsageError("--traffic FILE applies the file as it is: give no --version, --bundle, --canary, "
                             "--shadow or --publish-only with it.")
        if push and stage is None:
            raise UsageError("--push pushes the stage tag of --stage: give --stage (e.g. prod) with it.")
        typer.echo(api.deploy_traffic(target, traffic, named, model=model, stage=stage, push=push))
        return
    if stage is not None or push:
        raise UsageError("--stage and --push go with --traffic FILE (`gitml promote` assigns stages).")
    if canary is None:
        raise UsageError("--shadow goes with --canary PERCENT (or edit deploy/<model>.yaml).")
    if version is None:
        raise UsageError("Give --version: the canary's version, e.g. v1.2.0.")
    if publish_only:
        raise UsageError("--canary never changes what the target serves: --publish-only is implied.")
    summary, ignored = api.deploy_canary(target, version, canary, shadow, bundle, gate, allow_failed_gate,
                                         named, model=model)
    _warn_and_echo(summary, ignored, bundle)


def _warn_and_echo(summary: str, ignored: list[str], bundle: Path | None) -> None:
    for problem in ignored:
        typer.secho(f"WARNING --allow-failed-gate: publishing {bundle} although {problem}", err=True, fg="yellow")
    typer.echo(summary)


def _deploy_k8s(target: str, manifests: Path | None, version: str | None, bundle: Path | None, image: str | None,
                replicas: int, cpu: str, memory: str, params: Path, model: str | None) -> None:
    from gitml import api

    if str(target) != "k8s" or manifests is None:
        raise UsageError("Kubernetes manifests: `gitml deploy --target k8s DIR`; a deployment folder named k8s: "
                         "give its absolute path.")
    if bundle is not None:
        raise UsageError("--target k8s takes no --bundle: the image built from the fetched bundle holds it "
                         "(deploy/Dockerfile).")
    named = params if params.is_file() or params != Path("params.yaml") else None  # none: the defaults
    resolved, written = api.deploy_k8s(manifests, version, image, replicas, cpu, memory, params_file=named,
                                       model=model)
    typer.echo(f"wrote {len(written)} manifests for {resolved} into {manifests}")


@app.command("simulate")
def simulate(
    url: Annotated[str, typer.Option(help="Base URL of a running gitml serve.")] = "http://127.0.0.1:8080",
    batches: Annotated[int, typer.Option(help="Number of requests to send.")] = 10,
    batch_rows: Annotated[int, typer.Option("--batch-rows", help="Rows per request.")] = 100,
    source: Annotated[str, typer.Option(
        help="synthetic (model trained on data=synthetic) or test (rows of the prepared test split).")] = "synthetic",
    shift: Annotated[float, typer.Option(help="Covariate shift of the numeric columns, in standard deviations.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the row sampling (batch i uses seed + i).")] = 0,
    data: Annotated[OptPath, path_opt("Prepared data folder (with --source test).", "paths.prepared")] = None,
    params: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Parameters file: label column, synthetic generator (default: params.yaml when present).")] = None,
    feedback: Annotated[bool, typer.Option(
        "--feedback/--no-feedback", help="Post each batch's true labels to /feedback.")] = True,
) -> None:
    """Send batches of rows to a running server and post their true labels as feedback.

    Example: gitml simulate --url http://127.0.0.1:8080 --batches 20 --batch-rows 200 --source test --shift 1.5
    """
    from gitml import api

    result = api.simulate(url, batches, batch_rows, source, shift, seed, data, params, feedback)
    typer.echo(result.summary())
    if result.failed:
        raise typer.Exit(1)
