#!/usr/bin/env bash
# Prints a Python 3.10 interpreter (Rasa 3.6 needs <3.11), or fails saying how to get one.
set -euo pipefail
for candidate in \
  "$(command -v pyenv >/dev/null 2>&1 && echo "$(pyenv root)/versions/3.10.13/bin/python")" \
  "$HOME/.pyenv/versions/3.10.13/bin/python" \
  "$(command -v python3.10 || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    echo "$candidate"
    exit 0
  fi
done
echo "error: Python 3.10 not found. Install it (e.g. 'pyenv install 3.10.13') and retry." >&2
exit 1
