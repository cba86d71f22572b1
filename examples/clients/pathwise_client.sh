#!/bin/sh
# A pathwise client in shell, with socat.
#
#   pathwise_client.sh SOCKET FACTS.json         evaluate one facts file
#   pathwise_client.sh SOCKET - evaluate < f.json  facts from stdin
#   pathwise_client.sh SOCKET - health < /dev/null any method without params
#
# Prints the JSON-RPC response line. The request must be one line: JSON
# allows a raw newline only as white space, so folding the file's line
# breaks into spaces keeps it the same JSON.
set -eu
if [ $# -lt 2 ]; then
  echo "usage: $0 SOCKET FACTS.json|- [METHOD]" >&2
  exit 64
fi
sock=$1
file=$2
method=${3:-evaluate}
command -v socat >/dev/null 2>&1 || { echo "$0: socat is not installed" >&2; exit 69; }

if [ "$method" = evaluate ]; then
  if [ "$file" = - ]; then facts=$(tr '\r\n' '  '); else facts=$(tr '\r\n' '  ' < "$file"); fi
  req='{"jsonrpc":"2.0","id":1,"method":"evaluate","params":{"facts":'"$facts"'}}'
else
  req='{"jsonrpc":"2.0","id":1,"method":"'"$method"'"}'
fi
# socat half-closes after sending; the server answers, then closes.
printf '%s\n' "$req" | socat -t 30 - "UNIX-CONNECT:$sock"
