#!/usr/bin/env bash
# Waits until an infernet-node answers ready: GET <base>/ready → 200. A node without a /ready route (404) is
# judged by GET <base>/health → 200 instead. Used as the systemd unit's ExecStartPost; needs only bash (its
# /dev/tcp), no curl.
#   wait-ready [BASE_URL=http://127.0.0.1:4000] [TIMEOUT_S=900]
# Exit 0 when ready, 1 when the time runs out. Prints what it is waiting on every 10 s.
set -u
base=${1:-http://127.0.0.1:4000}
timeout=${2:-900}
hostport=${base#http://}
hostport=${hostport%%/*}
host=${hostport%:*}
port=${hostport##*:}
[ "$port" = "$hostport" ] && port=80

# HTTP status code of GET <path>, or 000 when nothing answers.
status() {
  local line
  exec 3<>"/dev/tcp/$host/$port" 2>/dev/null || { echo 000; return; }
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" "$hostport" >&3
  IFS=' ' read -r -t 5 _ line _ <&3 || line=000
  exec 3<&- 3>&-
  echo "${line:-000}"
}

deadline=$((SECONDS + timeout))
said=$SECONDS
while [ "$SECONDS" -lt "$deadline" ]; do
  code=$(status /ready)
  if [ "$code" = 200 ]; then echo "infernet-node is ready ($base/ready)"; exit 0; fi
  if [ "$code" = 404 ] && [ "$(status /health)" = 200 ]; then echo "infernet-node is healthy ($base/health; no /ready route)"; exit 0; fi
  if [ $((SECONDS - said)) -ge 10 ]; then echo "waiting for $base/ready (last answer: $code)"; said=$SECONDS; fi
  sleep 0.5
done
echo "infernet-node not ready after ${timeout} s ($base/ready last answered $code)" >&2
exit 1
