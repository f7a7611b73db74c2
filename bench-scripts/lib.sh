# Shared by the bench scripts: stock Redis from apt when missing, free
# loopback ports, waiting for a server to answer.

# tool -> Debian package (as tests/run-all)
ensure_redis_tools() {
  local missing=() tool
  declare -A pkg=([redis-server]=redis-server [redis-cli]=redis-tools [redis-benchmark]=redis-tools)
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 && continue
    [ -n "${pkg[$tool]:-}" ] || { echo "need $tool in PATH" >&2; exit 1; }
    missing+=("${pkg[$tool]}")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "== installing ${missing[*]}" >&2
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { local p=$1; while port_busy "$p"; do p=$((p + 1)); done; echo "$p"; }

wait_ready() { # port pid name
  local i
  for i in $(seq 1 100); do
    if redis-cli -p "$1" ping 2>/dev/null | grep -q PONG; then return 0; fi
    kill -0 "$2" 2>/dev/null || { echo "$3 exited early" >&2; return 1; }
    sleep 0.1
  done
  echo "$3 did not answer PING" >&2
  return 1
}
