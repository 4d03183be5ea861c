# Shared by scripts/test and scripts/serve: idempotent installs on a fresh Debian machine.

install_system_packages() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "== apt-get install ${missing[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "note: missing Debian packages (${missing[*]}); tests that need them are skipped" >&2
    fi
  fi
}

install_venv() {
  local extra="${1:-}"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  local stamp=".venv/.installed-${extra:-base}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "== pip install"
    .venv/bin/pip install -q --upgrade pip
    if [ -n "$extra" ]; then
      .venv/bin/pip install -q -e ".[$extra]"
    else
      .venv/bin/pip install -q -e .
    fi
    touch "$stamp"
  fi
}
