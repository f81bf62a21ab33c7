# common.sh - shared by tools/test and tools/demo: install what is missing, build.
# Sourced, not run. Works on a fresh Debian 12 as root (or with sudo).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# The Debian packages rota builds and tests with (DESIGN.md section 8).
ROTA_PACKAGES=(build-essential cmake pkg-config clang libcmocka-dev liburing-dev
    libcurl4-openssl-dev libhiredis-dev libmsgpack-dev libjansson-dev libcyaml-dev
    libyaml-dev libmicrohttpd-dev libhttp-parser-dev redis-server tzdata nginx-light wrk)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Install whichever of ROTA_PACKAGES are missing; nothing when all are there.
install_deps() {
    local missing=() p
    for p in "${ROTA_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# build DIR [cmake options...]: configure (once) and build a tree under $ROOT.
build() {
    local dir=$1
    shift
    cmake -S "$ROOT" -B "$ROOT/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$ROOT/$dir" -j "$(nproc)" >/dev/null
}
