# Source me: creates (once) and activates the project's virtual environment.
#
# The environment holds the dependencies pinned in constraints.txt and lives outside the
# clone, keyed by a hash of the dependency files, so a second clone or CI run reuses it:
#   ${I2I_VENV:-~/.cache/i2i/venv-<hash>}
# On a fresh machine the first call installs everything from the package registry
# (torch with its CUDA libraries: several GB, a few minutes). i2i itself is installed in
# editable mode from *this* clone on every call (seconds).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(command -v python3.11 || command -v python3)"
key="$(cat "$root/setup.cfg" "$root/constraints.txt" | sha256sum | cut -c1-12)"
venv="${I2I_VENV:-$HOME/.cache/i2i/venv-$key}"
if [ ! -f "$venv/.i2i-complete" ]; then
    echo "[env] creating $venv (first run: installs torch and friends, several minutes)" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv"
    "$venv/bin/pip" install --quiet -c "$root/constraints.txt" -e "$root[dev]"
    touch "$venv/.i2i-complete"
else
    "$venv/bin/pip" install --quiet --no-deps --no-build-isolation -e "$root" >/dev/null
fi
# shellcheck disable=SC1091
source "$venv/bin/activate"
cd "$root"
