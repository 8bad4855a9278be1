"""``gitml retrain-pr`` and ``gitml comment``: the forge-facing commands.

Only typer, typing and pathlib are imported here; everything else is imported inside the
command, so ``gitml --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

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


def register(app: typer.Typer) -> None:
    """Add this package's commands to the ``gitml`` app."""
    app.command("retrain-pr")(retrain_pr)
    app.command("comment")(comment)


def retrain_pr(
    repo_slug: RepoSlugOpt = None,
    forge_url: ForgeUrlOpt = None,
    report_dir: Annotated[Path, typer.Option(help="Drift report folder (drift.json verdict, drift.md, plots).")] = Path("reports/drift"),
    log_dir: Annotated[Path, typer.Option(help="Request and feedback log root (serve.log_dir).")] = Path("logs"),
    bundle: Annotated[Path, typer.Option(help="Bundle whose signature names the feature columns.")] = Path("models/bundle"),
    params: Annotated[Path, typer.Option("--params", help="Composed parameters file to read.")] = Path("params.yaml"),
    base: Annotated[str, typer.Option(help="Branch the pull request targets.")] = "main",
    remote: Annotated[str, typer.Option(help="Git remote to push the branch to.")] = "origin",
    label: Annotated[str, typer.Option(help="Label put on a newly opened pull request.")] = "retrain",
) -> None:
    """On drift, add labelled production rows as a DVC batch and open or update the retraining PR.

    One branch (gitml/retrain/<registry.model>) and one open pull request per model; the
    token comes from GITML_TOKEN or GITHUB_TOKEN. Without drift it does nothing.

    Example: gitml retrain-pr --repo-slug acme/churn --report-dir reports/drift --log-dir logs
    """
    from gitml.gitops.retrain import retrain_from_files

    result = retrain_from_files(
        params_file=params, report_dir=report_dir, log_dir=log_dir, bundle_dir=bundle,
        repo_slug=repo_slug, forge_url=forge_url, base=base, label=label, remote=remote,
    )
    typer.echo(result.describe())


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
    from gitml.errors import GitmlError
    from gitml.gitops.forge import GitHubForge

    if not repo_slug:
        raise GitmlError("No repository: pass --repo-slug owner/name or set GITHUB_REPOSITORY.")
    if not body_file.is_file():
        raise GitmlError(f"Comment body file '{body_file}' not found.")
    body = body_file.read_text(encoding="utf-8")
    with GitHubForge(repo_slug, base_url=forge_url) as forge:
        made = forge.upsert_sticky_comment(pr, marker, body) if marker else forge.comment(pr, body)
    typer.echo(f"comment {made.id} on #{pr}: {made.url}")
