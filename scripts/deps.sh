#!/bin/sh
# Install the Debian packages uspf needs that are missing (run as root).
set -eu
# gnuplot-nox: `uspf bench --plot` only; the tests skip the plot without it
# git sqlite3 xz-utils perl: programs tests/real-programs.sh runs under uspf
# (it skips what is missing; it also runs java and node when installed)
pkgs="build-essential autoconf automake libtool pkg-config autoconf-archive liburing-dev liburcu-dev libcriterion-dev python3 man-db gnuplot-nox git sqlite3 xz-utils perl"
missing=""
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
	exit 1
fi
echo "installing:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
