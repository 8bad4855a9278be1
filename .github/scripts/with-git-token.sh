#!/usr/bin/env bash
# Run one command with git credentials that live only in its environment.
#
# The workflows check out with `persist-credentials: false`, so no token is written to
# .git/config where later steps (`make install`, `dvc repro` running a pull request's code)
# or an uploaded artifact could read it (zizmor: artipacked). A step that must reach the git
# remote (fetch tags, push tags or a branch) passes its token as GIT_TOKEN and runs through
# this script: git gets the same Authorization header actions/checkout would have stored,
# but through GIT_CONFIG_COUNT/KEY/VALUE (git >= 2.31), gone when the command ends.
#
# Usage: GIT_TOKEN=<token> bash .github/scripts/with-git-token.sh COMMAND [ARGS...]
set -euo pipefail
token="${GIT_TOKEN:?set GIT_TOKEN in the step env (a token with the contents scope this command needs)}"
[ "$#" -gt 0 ] || { echo "usage: GIT_TOKEN=... with-git-token.sh COMMAND [ARGS...]" >&2; exit 2; }
server="${GITHUB_SERVER_URL:-https://github.com}"
basic="$(printf 'x-access-token:%s' "$token" | base64 | tr -d '\n')"
if [ "${GITHUB_ACTIONS:-}" = "true" ]; then
  # The runner masks the token, not its base64 form. On stderr: the command's stdout stays
  # its own (deploy.yml reads a version from it).
  echo "::add-mask::$basic" >&2
fi
n="${GIT_CONFIG_COUNT:-0}"
export "GIT_CONFIG_KEY_$n=http.$server/.extraheader"
export "GIT_CONFIG_VALUE_$n=AUTHORIZATION: basic $basic"
export GIT_CONFIG_COUNT=$((n + 1))
unset GIT_TOKEN token
exec "$@"
