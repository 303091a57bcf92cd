# Shared by scripts/setup-and-run and scripts/test; sourced, not run.
# Creates .venv, installs the Python package and builds the web assets, each only when needed.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
cd "$ROOT"

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# A digest of the files whose change makes a step necessary again.
digest() { cat "$@" 2>/dev/null | python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'; }

ensure_venv() {
  command -v python3 >/dev/null || die "python3 not found; gmpflow needs Python 3.11 or newer"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "gmpflow needs Python 3.11 or newer; python3 is $(python3 -V 2>&1)"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment .venv"
    python3 -m venv "$VENV"
  fi
}

# ensure_python_package LOCK -- LOCK is requirements/app.lock (the app) or requirements/test.lock (app + tests):
# the exact versions and hashes pip-compile resolved from pyproject.toml (see requirements/README.md).
ensure_python_package() {
  local lock="$1" stamp="$VENV/.gmpflow-installed-$(basename "$1" .lock)"
  local want; want="$(digest pyproject.toml "$lock")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/gmpflow" ]; then
    say "Python dependencies up to date"
    return
  fi
  say "installing the locked dependencies of $lock into .venv (hashes checked)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$lock"
  # gmpflow itself, editable; its dependencies are the locked ones above
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
  printf '%s\n' "$want" > "$stamp"
}

ensure_web_assets() {
  command -v npm >/dev/null || die "npm not found; gmpflow's web assets need Node.js 20 or newer with npm"
  local stamp="node_modules/.gmpflow-lock" want
  want="$(digest package.json package-lock.json)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing front-end packages (npm ci; install scripts off: nothing here needs them)"
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    printf '%s\n' "$want" > "$stamp"
  fi
  local built=webapp/static/dist/.built
  if [ ! -f "$built" ] || [ -n "$(find webapp/assets package-lock.json -type f -newer "$built" | head -1)" ]; then
    say "building web assets into webapp/static/dist"
    npm run --silent build
    touch "$built"
  else
    say "web assets up to date"
  fi
}

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; it never downloads a browser).
ensure_chromium() {
  [ -x /usr/bin/chromium ] && return
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's chromium for the browser tests"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; } \
      || die "could not install chromium; the browser tests need /usr/bin/chromium"
  else
    say "warning: /usr/bin/chromium is missing and this is not root: install Debian's chromium, or the browser tests fail"
  fi
}
