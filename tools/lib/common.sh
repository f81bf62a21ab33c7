# common.sh - shared by tools/test and tools/demo: install what is missing, build.
# Sourced, not run. Works on a fresh Debian 12 as root (or with sudo).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# The Debian packages rota builds and tests with (DESIGN.md section 8).
ROTA_PACKAGES=(build-essential cmake pkg-config clang libcmocka-dev liburing-dev
    libcurl4-openssl-dev libssl-dev libhiredis-dev libmsgpack-dev libjansson-dev
    libcyaml-dev libyaml-dev libmicrohttpd-dev libhttp-parser-dev redis-server tzdata openssl
    curl nginx-light wrk)

# What runs the official SDK clients the tests use (tests/sdk): Debian's node and npm.
ROTA_NODE_PACKAGES=(nodejs npm)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# apt_install PACKAGE...: install them (as root, or with sudo).
apt_install() {
    say "installing $*"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Install whichever of ROTA_PACKAGES are missing; nothing when all are there.
install_deps() {
    local missing=() p
    for p in "${ROTA_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    apt_install "${missing[@]}"
}

# node and npm: Debian's when either command is missing; nothing when both are there,
# wherever they came from (a nodejs from elsewhere may carry its own npm, and conflict
# with Debian's).
install_node() {
    command -v node >/dev/null && command -v npm >/dev/null && return 0
    apt_install "${ROTA_NODE_PACKAGES[@]}"
}

# build DIR [cmake options...]: configure (once) and build a tree under $ROOT.
build() {
    local dir=$1
    shift
    cmake -S "$ROOT" -B "$ROOT/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$ROOT/$dir" -j "$(nproc)" >/dev/null
}
