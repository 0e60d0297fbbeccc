#!/usr/bin/env bash
# Install what tests/report/test_browser.py needs: Debian's Chromium (no browser download
# from the internet) and the Playwright Python package that drives it.
# Idempotent: skips what is already present. Usage: scripts/install_browser.sh [PYTHON]
set -euo pipefail
PY="${1:-python}"
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if ! "$PY" -c "import playwright.sync_api" >/dev/null 2>&1; then
    # only the Python package: the browser is Debian's /usr/bin/chromium (no 'playwright install')
    "$PY" -m pip install --quiet "playwright>=1.40"
fi
echo "browser: $(command -v chromium) ($(chromium --version 2>/dev/null | head -n1))"
"$PY" -c "import playwright; print('playwright', playwright.__version__)" 2>/dev/null \
    || "$PY" -c "import importlib.metadata as m; print('playwright', m.version('playwright'))"
