#!/usr/bin/env bash
# Copy the servers' request and feedback logs (docs/logs.md) into the folder given as $1.
# A server of several models writes each one's logs under LOG_DIR/NAME/: copied as they are,
# they are where `gitml drift run --log-dir DEST` looks for each model's.
# GITML_LOG_SOURCE is where the servers' `serve.log_dir` is shipped to: a local or mounted
# folder, or an s3:// prefix (needs the aws CLI and the AWS_* credentials in the env).
set -euo pipefail
dest="${1:?usage: collect-logs.sh DEST}"
source="${GITML_LOG_SOURCE:?set the repository variable GITML_LOG_SOURCE}"
mkdir -p "$dest"
case "$source" in
  s3://*) aws s3 sync --only-show-errors "$source" "$dest" ;;
  *) cp -R "$source"/. "$dest"/ ;;
esac
echo "collected $(find "$dest" -name '*.parquet' | wc -l) log file(s) from $source"
