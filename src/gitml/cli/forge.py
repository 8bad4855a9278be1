"""Forge commands: retrain-pr and comment (GitHub's REST API; the token from the environment)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gitml.cli.base import DriftDirOpt, ModelOpt, OptPath, app, path_opt

RepoSlugOpt = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional
    typer.Option("--repo-slug", envvar="GITHUB_REPOSITORY",
                 help="GitHub repository owner/name (default: $GITHUB_REPOSITORY)."),
]
ForgeUrlOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--forge-url", help="GitHub API URL (default: $GITML_FORGE_URL, $GITHUB_API_URL, "
                 "https://api.github.com; GitHub Enterprise: https://HOST/api/v3)."),
]



@app.command("retrain-pr")
def retrain_pr(
    repo_slug: RepoSlugOpt = None,
    forge_url: ForgeUrlOpt = None,
    report_dir: DriftDirOpt = None,
    log_dir: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--log-dir", help="Request and feedback log folder or s3:// URL (default: serve.log_dir in params.yaml; "
        "with --model in a repository of several models, serve.log_dir/NAME).")] = None,
    bundle: Annotated[OptPath, path_opt("Bundle whose signature names the feature columns.", "paths.bundle")] = None,
    params: Annotated[Path, typer.Option("--params", help="Composed parameters file to read.")] = Path("params.yaml"),
    base: Annotated[str, typer.Option(help="Branch the pull request targets.")] = "main",
    remote: Annotated[str, typer.Option(help="Git remote to push the branch to.")] = "origin",
    label: Annotated[str, typer.Option(help="Label put on a newly opened pull request.")] = "retrain",
    model: ModelOpt = None,
) -> None:
    """On drift, add labelled production rows as a DVC batch and open or update the retraining PR.

    One branch (gitml/retrain/<registry.model>) and one open pull request per model; the
    token comes from GITML_TOKEN or GITHUB_TOKEN. Without drift it does nothing. With
    --model, that model's report (reports/NAME/drift), logs (serve.log_dir/NAME), bundle,
    batch folder (data/NAME/production) and branch (gitml/retrain/NAME).

    Example: gitml retrain-pr --repo-slug acme/churn --report-dir reports/drift --log-dir logs
    """
    from gitml import api

    typer.echo(api.retrain_pr(params, report_dir, log_dir, bundle, repo_slug, forge_url, base, label, remote,
                              model).describe())


@app.command("comment")
def comment(
    pr: Annotated[int, typer.Option("--pr", help="Pull request number.")],
    body_file: Annotated[Path, typer.Option("--body-file", help="Markdown file with the comment text.")],
    marker: Annotated[str, typer.Option(help="Sticky-comment marker: the comment carrying it is edited, "
                                        "not duplicated. Empty: always post a new comment.")] = "ci-report",
    repo_slug: RepoSlugOpt = None,
    forge_url: ForgeUrlOpt = None,
) -> None:
    """Post a comment on a pull request, or update the sticky one with the same marker.

    Example: gitml comment --pr 12 --body-file reports/ci.md --marker ci-report
    """
    from gitml import api

    made = api.comment(pr, body_file, marker, repo_slug, forge_url)
    typer.echo(f"comment {made.id} on #{pr}: {made.url}")
