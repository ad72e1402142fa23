# scripts/lib.sh - shared by scripts/demo and scripts/test: the Debian
# packages leakwatch needs (the one list), installing the missing ones, and
# configuring + building into build/. Sourced, never run; expects bash with
# `set -euo pipefail`. Every step is idempotent.

# Debian 12 packages, each with the reason it is needed. Never add
# libunwind-14-dev or libc++ (they conflict with libunwind-dev).
LW_PACKAGES=(
    gcc              # compiles lib/, tools/, examples/
    g++              # examples/exact_cxx.cc: C++ new/delete under the preload
    libc6-dev        # C headers and crt files
    meson            # build system
    ninja-build      # build backend meson drives
    pkg-config       # meson finds the libraries below through it
    libunwind-dev    # lib/: call stacks (unw_backtrace)
    libdw-dev        # tools/: offline symbolization (function, file:line, inlines)
    libelf-dev       # tools/ and lib/: ELF build-ids and program headers
    uthash-dev       # tools/: hash tables for aggregation
    libcriterion-dev # tests/lib, tests/tools: unit tests
    libjemalloc-dev  # examples/exact_jemalloc: a program with its own allocator
    python3          # tests/integration and the test summary
    perl             # tests/integration: a real program run under the preload
    git              # tests/integration: a real program run under the preload
    binutils         # as/ld for gcc; nm in the tests
    heaptrack        # bench/: the comparison figures
    golang-go        # tests/integration/test_inspect: a real Go runtime releasing with MADV_FREE
    zlib1g-dev       # tools/: gzip of --format pprof profiles (test_pprof.py also runs go tool pprof)
    chromium         # tests/integration/test_html.py: the HTML report in a headless browser
    clang            # tests/fuzz: libFuzzer build of the snapshot reader (scripts/test)
    libclang-rt-14-dev # tests/fuzz: libFuzzer and clang's sanitizer runtimes (only recommended by clang)
    sqlite3          # tests/integration/test_sqlite.py: a real program under the preload
    redis-server     # tests/integration/test_redis.py: a server under load, snapshots by signal
    redis-tools      # tests/integration/test_redis.py: redis-benchmark and redis-cli drive it
)

# Absolute path of the repository root (the parent of scripts/).
lw_repo_root() {
    (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
}

# Print the packages of LW_PACKAGES that are not installed, one per line.
lw_missing_packages() {
    local p status
    for p in "${LW_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        if [[ "$status" != ii* ]]; then
            echo "$p"
        fi
    done
}

# Install whatever is missing (as root), or say exactly what to run and
# exit 1 (not root). Waits for a dpkg lock held by another process.
lw_ensure_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "leakwatch: this script expects Debian 12 (dpkg-query not found)." >&2
        echo "leakwatch: install the equivalents of: ${LW_PACKAGES[*]}" >&2
        exit 1
    fi
    local missing
    mapfile -t missing < <(lw_missing_packages)
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    local cmd="apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends ${missing[*]}"
    if [[ $(id -u) -ne 0 ]]; then
        local sudo=""
        command -v sudo >/dev/null 2>&1 && sudo="sudo "
        echo "leakwatch: missing Debian packages: ${missing[*]}" >&2
        echo "leakwatch: install them as root, then run this again:" >&2
        echo "    ${sudo}apt-get update && ${sudo}$cmd" >&2
        exit 1
    fi
    echo "leakwatch: installing missing Debian packages: ${missing[*]}" >&2
    apt-get -o DPkg::Lock::Timeout=300 update
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
        install -y --no-install-recommends "${missing[@]}"
}

# Configure build/ (first time) or reconfigure it, then build everything.
lw_build_steps() {
    if [[ -f build/meson-private/coredata.dat ]]; then
        meson setup --reconfigure -Dtests=true build ||
            meson setup --wipe -Dtests=true build || return 1
    else
        meson setup -Dtests=true build || return 1
    fi
    ninja -C build
}

# lw_build [quiet]: build; with "quiet" the output goes to a log that is
# shown (its end) only if the build fails. Exits 1 on failure.
lw_build() {
    if [[ "${1:-}" != quiet ]]; then
        lw_build_steps || { echo "leakwatch: build failed" >&2; exit 1; }
        return 0
    fi
    local log
    log=$(mktemp "${TMPDIR:-/tmp}/leakwatch-build.XXXXXX")
    if ! lw_build_steps >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "leakwatch: build failed (full log: $log)" >&2
        exit 1
    fi
    rm -f "$log"
}
