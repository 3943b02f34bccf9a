#!/bin/sh
# The first README command: install what is missing, build, run the main job.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh
exec ./uspf bench "$@"
