# Source me: creates (once) and activates this clone's environment.
#
# Two layers, so that clones share the heavy dependencies but each runs its own code:
#   - the dependencies pinned in constraints.txt (torch with its CUDA libraries: several GB, a few
#     minutes the first time), shared by every clone on the machine and kept outside them, keyed by
#     a hash of the dependency files:  ${I2I_VENV:-~/.cache/i2i/deps-<hash>}. It holds no i2i.
#   - this clone's own environment, <clone>/.venv (seconds to make, no packages of its own): its
#     Python finds this clone's i2i first (a .pth file naming the clone), then the shared
#     dependencies; its `i2i` command runs this clone's code.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(command -v python3.11 || command -v python3)"
key="$(cat "$root/setup.cfg" "$root/constraints.txt" "$root/tools/env.sh" | sha256sum | cut -c1-12)"
deps="${I2I_VENV:-$HOME/.cache/i2i/deps-$key}"
_i2i_prune() {  # the shared layers of other dependency versions no clone has used for 14 days (GBs each)
    local old used
    for old in "$HOME"/.cache/i2i/deps-*; do
        [ -d "$old" ] && [ "$old" != "$deps" ] || continue
        used="$old/.i2i-used"; [ -f "$used" ] || used="$old/.i2i-complete"
        if [ -z "$(find "$used" -mtime -14 2>/dev/null)" ]; then
            rm -rf "$old" && echo "[env] removed $old (its dependency versions unused for 14 days)" >&2
        fi
    done
}
if [ "${I2I_PRUNE_ONLY:-0}" = 1 ]; then _i2i_prune; return 0 2>/dev/null || exit 0; fi
if [ ! -f "$deps/.i2i-complete" ]; then
    [ -n "${I2I_VENV:-}" ] || _i2i_prune
    free_kb="$(df -Pk "$(dirname "$deps")" 2>/dev/null | awk 'NR==2 {print $4}')"
    if [ -n "$free_kb" ] && [ "$free_kb" -lt $((8 * 1024 * 1024)) ]; then
        echo "[env] $((free_kb / 1024 / 1024)) GB free in $(dirname "$deps"); the dependencies need about 8 GB: free some" \
             "(older layers: ls ~/.cache/i2i, each deps-* is one set of dependency versions) and source tools/env.sh again" >&2
        return 1 2>/dev/null || exit 1
    fi
    echo "[env] creating $deps (first run: installs torch and friends, several minutes)" >&2
    rm -rf "$deps"
    "$py" -m venv "$deps"
    if ! "$deps/bin/pip" install --quiet -c "$root/constraints.txt" -e "$root[dev]"; then
        # never marked complete: a half-installed layer would be shared by every clone with this key
        echo "[env] installing the dependencies failed (above); $deps removed: fix it and source tools/env.sh again" >&2
        rm -rf "$deps"
        return 1 2>/dev/null || exit 1
    fi
    "$deps/bin/pip" uninstall --quiet --yes i2i  # the shared layer holds dependencies only, never a clone's code
    touch "$deps/.i2i-complete"
fi
touch "$deps/.i2i-used" 2>/dev/null || true  # this layer is in use: pruning leaves it for 14 days
own="$root/.venv"
if [ ! -f "$own/.i2i-deps" ] || [ "$(cat "$own/.i2i-deps")" != "$deps" ]; then
    rm -rf "$own"
    "$py" -m venv --without-pip "$own"
    site="$("$own/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    shared="$("$deps/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    printf '%s\n' "$root" > "$site/_i2i_clone.pth"
    printf 'import site; site.addsitedir(%s)\n' "'$shared'" > "$site/_i2i_shared_deps.pth"
    printf '#!%s\nimport sys\n\nfrom i2i.cli import main\n\nsys.exit(main())\n' "$own/bin/python" > "$own/bin/i2i"
    chmod +x "$own/bin/i2i"
    echo "$deps" > "$own/.i2i-deps"
fi
# shellcheck disable=SC1091
source "$own/bin/activate"
export PATH="$own/bin:$deps/bin:$PATH"  # the shared tools (pytest, ruff) after this clone's own
cd "$root"
