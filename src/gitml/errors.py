"""The catalogue of gitml errors.

Every failure a user can cause has its own class under :class:`GitmlError`, with a message
that names the object, the value and what is allowed, and a ``hint``: how to fix it. The
CLI prints the message, then the hint on a ``fix:`` line, and exits 1 (2 for a drift check
without a verdict); anything else is a bug and says so.
"""

from __future__ import annotations


class GitmlError(Exception):
    """Root of every error gitml raises on purpose."""

    exit_code = 1
    hint: str | None = None  # how to fix it (a class's usual fix; an instance may say more)

    def __init__(self, *args: object, hint: str | None = None):
        super().__init__(*args)
        if hint is not None:
            self.hint = hint


class ConfigError(GitmlError):
    """The configuration (conf/ or params.yaml) is invalid: every problem found, each naming its key.

    ``problems`` lists ``(key, problem)`` pairs; ``key``/``problem`` are the first of them,
    so callers that handle one problem keep working. ``file`` says where the values came
    from (a file, with any command-line overrides).
    """

    def __init__(self, file: str, key: str | None, problem: str, hint: str | None = None,
                 problems: list[tuple[str | None, str]] | None = None):
        self.file, self.key, self.problem, self.hint = file, key, problem, hint
        self.problems: list[tuple[str | None, str]] = list(problems or [])
        if not self.problems or self.problems[0] != (key, problem):
            self.problems.insert(0, (key, problem))
        if len(self.problems) == 1:
            where = f"{file}: '{key}'" if key else file
            message = f"Invalid config in {where}: {problem}"
        else:
            lines = "".join(f"\n  '{k}': {p}" if k else f"\n  {p}" for k, p in self.problems)
            message = f"Invalid config in {file}: {len(self.problems)} problems:{lines}"
        if hint:
            message += f" {hint}" if len(self.problems) == 1 else f"\n{hint}"
        super().__init__(message)

    @classmethod
    def of(cls, file: str, problems: list[tuple[str, str]], hint: str | None = None) -> ConfigError:
        """One error for a non-empty list of ``(key, problem)`` pairs, in their order."""
        key, problem = problems[0]
        return cls(file, key, problem, hint, problems=[(k, p) for k, p in problems])


class UsageError(GitmlError):
    """A command-line option's value is not one the configuration allows (exit 2, as for any bad option)."""

    exit_code = 2
    hint = "see the command's --help for the allowed values."


class ParamsOutOfSync(GitmlError):
    """params.yaml is not what conf/ composes to."""

    hint = "edit conf/, never params.yaml; then run the command above and commit both."

    def __init__(self, params_file: str, diff: list[str], fix: str):
        self.params_file, self.diff, self.fix = params_file, diff, fix
        shown = "\n".join(f"  {line}" for line in diff[:20])
        more = f"\n  ... and {len(diff) - 20} more" if len(diff) > 20 else ""
        super().__init__(
            f"{params_file} is out of sync with conf/ ({len(diff)} difference(s)):\n"
            f"{shown}{more}\nRun `{fix}` and commit the result."
        )


class DataSourceError(GitmlError):
    """A data source could not be read."""

    hint = "check data.source (kind, path or name) and that the file is in data/external/."


class DataValidationError(GitmlError):
    """A data snapshot broke its schema; the report lists every failure."""

    hint = "fix the rows, or, if the data legitimately changed, the contract (data.schema.path) in a reviewed change."

    def __init__(self, report_path: str, failures: list[str]):
        self.failures = failures
        shown = "\n".join(f"  - {f}" for f in failures[:15])
        more = f"\n  ... and {len(failures) - 15} more" if len(failures) > 15 else ""
        super().__init__(
            f"Data validation failed with {len(failures)} problem(s) "
            f"(full report: {report_path}):\n{shown}{more}"
        )


class UnsafeTargetError(GitmlError):
    """A `_target_` in config is not in gitml's registry of classes nor in the config's own list.

    Checked on the string, before anything is imported (utils/targets.py).
    """

    hint = "use a class gitml allows, or list its exact name where the message says, in a reviewed change."

    def __init__(self, key: str, target: str, allowed: list[str], extra_key: str):
        self.key, self.target = key, target
        super().__init__(
            f"Refusing to instantiate '{target}' from '{key}': it is not one of the classes gitml "
            f"allows ({', '.join(allowed)}). To allow another class, list its exact name in "
            f"'{extra_key}' (a reviewed config change)."
        )


class ModelLoadError(GitmlError):
    """A model file is missing, tampered with, or in a format gitml refuses to load."""

    hint = "rebuild the model with `dvc repro` (or fetch the bundle again); never edit model files by hand."

    def __init__(self, path: str, reason: str):
        self.path = path
        super().__init__(f"Refusing to load model '{path}': {reason}.")


class DeviceError(GitmlError):
    """The configured device is not available."""

    hint = "set trainer.device=auto (or cpu), or run where the device exists."


class DistributedError(GitmlError):
    """Data-parallel training could not start, or a rank failed and the launcher stopped the group."""

    hint = ("see the rank's message above; a rerun resumes from the last checkpoint (trainer.checkpoint=true), "
            "and docs/distributed.md lists the trainer.distributed keys.")


class StreamingError(GitmlError):
    """The training features exceed ``trainer.stream.max_memory_mb`` and the model family cannot stream them."""

    hint = ("train a torch family (model=mlp or model=torch_custom), which streams row groups, or raise the "
            "budget: gitml config compose trainer.stream.max_memory_mb=N (docs/training.md, \"Streaming\").")


class BundleError(GitmlError):
    """A bundle failed verification: a file is missing, altered or unexpected."""

    hint = "rebuild the bundle with `dvc repro` or fetch it again with `gitml fetch`; never edit a bundle by hand."

    def __init__(self, bundle: str, problems: list[str]):
        self.bundle, self.problems = bundle, problems
        super().__init__(f"Refusing bundle '{bundle}': " + "; ".join(problems) + ".")


class ChainError(GitmlError):
    """A bundle is not bound to what built it at its commit: model, gate verdict or branch do not agree.

    Raised by promote, fetch and serve --stage (registry/chain.py) with every broken link.
    """

    hint = "promote only what CI reproduced and pushed: `dvc repro`, `dvc push`, commit, push, then promote."

    def __init__(self, what: str, problems: list[str]):
        self.what, self.problems = what, problems
        super().__init__(f"Refusing {what}: " + "; ".join(problems) + ".")


class TagSignatureError(GitmlError):
    """A stage in ``registry.signed_stages`` has an assignment tag that is unsigned or not signed by an allowed key."""

    hint = "have a key listed in registry.allowed_signers sign the stage tag (`gitml promote` with git's SSH signing set up)."


class InputValidationError(GitmlError):
    """Prediction input does not match the bundle's signature."""

    hint = ("Send the columns, types and ranges of the bundle's signature "
            "(signature.json in the bundle; GET /v2/models/model on a server).")

    def __init__(self, problems: list[dict[str, str]]):
        self.problems = problems
        shown = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"Input does not match the signature: {shown}{more}.")


class DriftCheckError(GitmlError):
    """``gitml drift check`` could not reach a verdict (no logs, too few rows, bad bundle).

    Exit code 2, so a scheduled job tells "could not check" from "drift" (exit 1).
    """

    hint = "see the message: serve traffic into the log, widen the window, or fix the bundle or settings it names."

    exit_code = 2


class RequestLogError(DriftCheckError):
    """The request or feedback log is missing, unreadable or lacks a needed column."""


# ------------------------------------------------------------------ git, forge, registry


class GitError(GitmlError):
    """A git command failed."""

    hint = "run the git command it names by hand to see why; `gitml doctor` checks the repository."


class ForgeError(GitmlError):
    """A forge (GitHub) request failed; the message never contains the token."""

    hint = "check GITML_TOKEN (or GITHUB_TOKEN) and its permissions, and the repository slug; `gitml doctor` checks the token."

    def __init__(self, message: str, status: int | None = None):
        from gitml.gitops.tokens import redact

        self.status = status
        super().__init__(redact(message))


class PromotionError(GitmlError):
    """A promotion was refused or could not be completed; the registry is as it was."""

    hint = "see the message; `gitml registry show` lists versions and stages."


class GateFailed(GitmlError):
    """The gate verdict is fail, or it was reached against a champion that is no longer current."""

    hint = "read reports/gate.md: improve the model, or change conf/gate/ in a reviewed pull request."


class RetrainError(GitmlError):
    """The retraining pull request could not be prepared or pushed."""

    hint = "see the message; the checkout and the remote are as they were, so rerun once it is fixed."


# ------------------------------------------------------------------ serving


class DeploymentError(GitmlError):
    """A deployment folder or pointer is missing, malformed, or a publish was refused."""

    hint = "see the message; `gitml deploy --help` lists the options, and published versions are immutable."


class StorageError(GitmlError):
    """An object-storage location (``s3://bucket/prefix``) cannot be used: its URL or the client library."""

    hint = "see docs/storage.md: s3:// URLs, with the endpoint and credentials in the AWS_* environment variables."


class RequestError(GitmlError):
    """A request the server refuses: HTTP status, one-line message, field-level problems.

    Never reaches the CLI: the server answers it as a 4xx (serve/app.py).
    """

    def __init__(self, status: int, message: str, problems: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.problems, self.headers = status, message, problems or [], headers

    @classmethod
    def invalid(cls, problems: list[dict[str, str]], what: str = "input") -> RequestError:
        from gitml.package.values import clip

        return cls(400, f"The {what} does not match the model signature ({len(problems)} problem(s)).",
                   [{"field": clip(p["field"], 80), "message": clip(p["message"], 400)} for p in problems[:50]])

