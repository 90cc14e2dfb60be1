#!/usr/bin/env bash
# Installs pgvector into the machine's PostgreSQL (15 on Debian 12) when it is missing.
# Debian 12 ships no pgvector package, so we build Debian's own source package from
# trixie's deb-src, using a private apt sources file and lists directory so the
# system's apt configuration is left untouched.
set -euo pipefail

PG_MAJOR=${PG_MAJOR:-$(ls /etc/postgresql | sort -n | tail -1)}
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
SHAREDIR=/usr/share/postgresql/$PG_MAJOR

if [ -f "$SHAREDIR/extension/vector.control" ]; then
  echo "pgvector already installed for PostgreSQL $PG_MAJOR"
  exit 0
fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

work=$(mktemp -d /tmp/pgvector-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir -p "$work/lists/partial"
cat > "$work/sources.list" <<SRC
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SRC
APT_PRIVATE=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null" -o "Dir::State::Lists=$work/lists")

echo "Installing build dependencies (postgresql-server-dev-$PG_MAJOR, dpkg-dev)"
$SUDO apt-get install -y -q --no-install-recommends "postgresql-server-dev-$PG_MAJOR" dpkg-dev make gcc >/dev/null \
  || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends "postgresql-server-dev-$PG_MAJOR" dpkg-dev make gcc >/dev/null; }

echo "Fetching Debian's pgvector source package from trixie"
$SUDO apt-get "${APT_PRIVATE[@]}" update -q >/dev/null
(cd "$work" && apt-get "${APT_PRIVATE[@]}" source --download-only -q pgvector >/dev/null)
(cd "$work" && dpkg-source -x --no-check ./pgvector_*.dsc src >/dev/null)

echo "Building pgvector against PostgreSQL $PG_MAJOR"
make -s -C "$work/src" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" -j"$(nproc)" >/dev/null
$SUDO make -s -C "$work/src" PG_CONFIG="$PG_CONFIG" install >/dev/null
echo "pgvector installed: $(ls "$SHAREDIR"/extension/vector--*.sql | tail -1)"
