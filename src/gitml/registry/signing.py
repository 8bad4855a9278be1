"""Signed stage tags: git's SSH signing, checked against an allowed-signers file in the repository.

For the stages in ``registry.signed_stages``, ``gitml promote`` signs the assignment tag
(``git tag -s``, with the promoter's ``gpg.format=ssh`` and ``user.signingkey``), and
``gitml fetch --stage`` and ``gitml serve --stage`` take a version from such a stage only
when its active assignment tag verifies against ``registry.allowed_signers`` (git's
``gpg.ssh.allowedSignersFile`` format, committed and reviewed like code). Verification is
offline: ``git verify-tag`` runs ``ssh-keygen -Y verify``.

GTO creates tags through dulwich, which does not sign, so the assignment tag GTO made is
re-created here with the same name, message and commit, signed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from gitml.errors import GitError, TagSignatureError
from gitml.gitops.git import git


def sign_tag(repo: str | Path, tag: str, allowed_signers: Path) -> None:
    """Replace the annotated ``tag`` by a signed one (same name, message, commit); check the signature."""
    message = git(repo, "tag", "--list", "--format=%(contents)", tag, strip=False).rstrip("\n")
    commit = git(repo, "rev-parse", f"refs/tags/{tag}^{{commit}}")
    try:
        git(repo, "tag", "--force", "--sign", "--message", message or f"Signed {tag}", tag, commit)
    except GitError as exc:
        raise TagSignatureError(
            f"Cannot sign the stage tag '{tag}' <registry.signed_stages>: {exc}. Set up git's SSH signing: "
            "`git config gpg.format ssh` and `git config user.signingkey ~/.ssh/KEY.pub`."
        ) from exc
    problem = signature_problem(repo, tag, allowed_signers)
    if problem:
        raise TagSignatureError(f"The signed stage tag {problem}; is your key in {allowed_signers} "
                                "<registry.allowed_signers>?")


def signature_problem(repo: str | Path, tag: str, allowed_signers: Path) -> str | None:
    """Why ``tag`` is not signed by a key in ``allowed_signers``, or None when it is."""
    if not allowed_signers.is_file():
        return f"'{tag}' cannot be verified: no allowed-signers file at {allowed_signers} <registry.allowed_signers>"
    result = subprocess.run(
        ["git", "-C", str(repo), "-c", "gpg.format=ssh", "-c", f"gpg.ssh.allowedSignersFile={allowed_signers.resolve()}",
         "verify-tag", f"refs/tags/{tag}"],
        capture_output=True, text=True,
    )
    if result.returncode == 0:
        return None
    said = (result.stderr or result.stdout).strip().splitlines()
    reason = "it is not signed" if any("no signature found" in line for line in said) else (
        "no key in the allowed-signers file signed it" if any("No principal matched" in line for line in said)
        else f"its signature does not verify ({said[-1] if said else 'git verify-tag failed'})")
    return f"'{tag}' is refused: {reason}"


def check_stage_signed(repo: str | Path, name: str, stage: str, tag: str, allowed_signers: Path) -> None:
    """Raise TagSignatureError unless ``tag`` (``stage``'s active assignment) verifies."""
    if not tag:
        raise TagSignatureError(f"Stage '{stage}' of '{name}' must be signed <registry.signed_stages>, "
                                "but its assignment tag is unknown.")
    problem = signature_problem(repo, tag, allowed_signers)
    if problem:
        raise TagSignatureError(f"Stage '{stage}' of '{name}' must be signed <registry.signed_stages>: {problem}.")
