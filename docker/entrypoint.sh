#!/usr/bin/env bash
# Container entrypoint of bert-as-service.
#
#   entrypoint.sh [NUM_WORKER] [bert-serving-start arguments...]           a server (or a front)
#   entrypoint.sh worker [NUM_WORKER] [bert-serving-worker arguments...]   workers for a front
#   entrypoint.sh --healthcheck
#
# The first argument, when it is a number, is the worker count (default: $NUM_WORKER or 1);
# everything else goes to bert-serving-start (or bert-serving-worker) unchanged. The model is
# read from $BERT_MODEL_DIR (default /model, where `docker run -v /path/to/bert:/model`
# mounts it) unless the arguments name a -model_dir themselves; when that folder is absent
# or empty, the embedded default model (all-MiniLM-L6-v2, installed in the image) is served,
# so that the image runs with nothing mounted.
#
# What to probe is written to $BERT_SERVING_STATE so that `--healthcheck` knows: the HTTP
# /health endpoint when -http_port is set, else a ZeroMQ handshake with BertClient; for
# workers, that their front's worker port accepts connections.
set -euo pipefail

model_dir="${BERT_MODEL_DIR:-/model}"
state_file="${BERT_SERVING_STATE:-/tmp/bert-serving.ports}"
python="${PYTHON:-python}"

die() {
    echo "entrypoint: $*" >&2
    exit 2
}

healthcheck() {
    local role=server port=5555 port_out=5556 http_port="" ip=localhost port_worker=""
    if [[ -r "$state_file" ]]; then
        # shellcheck source=/dev/null
        source "$state_file"
    fi
    if [[ "$role" == worker ]]; then
        exec "$python" -c 'import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=8).close()' "$ip" "$port_worker"
    fi
    if [[ -n "$http_port" ]]; then
        exec "$python" -c 'import sys, urllib.request
urllib.request.urlopen("http://127.0.0.1:%s/health" % sys.argv[1], timeout=8)' "$http_port"
    fi
    exec "$python" -c 'import sys
from bert_serving.client import BertClient
with BertClient(port=int(sys.argv[1]), port_out=int(sys.argv[2]), timeout=8000,
                check_version=False) as bc:
    bc.server_config' "$port" "$port_out"
}

if [[ "${1:-}" == "--healthcheck" ]]; then
    healthcheck
fi

role=server
command=bert-serving-start
if [[ "${1:-}" == "worker" ]]; then
    role=worker
    command=bert-serving-worker
    shift
fi

num_worker="${NUM_WORKER:-1}"
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
    num_worker="$1"
    shift
fi
# a front with -num_worker 0 computes nothing itself: its workers join on -port_worker
minimum=1
[[ "$role" == server ]] && minimum=0
[[ "$num_worker" =~ ^[0-9]+$ && "$num_worker" -ge "$minimum" ]] \
    || die "the worker count must be a whole number of at least $minimum, got '$num_worker'"

# read the ports (and whether a -model_dir is given) from the arguments, as argparse would
port=5555 port_out=5556 http_port="" ip=localhost port_worker="" own_model_dir=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    arg="${args[i]}"
    value="${args[i + 1]:-}"
    if [[ "$arg" == -*=* ]]; then
        value="${arg#*=}"
        arg="${arg%%=*}"
    fi
    case "$arg" in
        -port | -port_in | -port_data) port="$value" ;;
        -port_out | -port_result) port_out="$value" ;;
        -http_port) http_port="$value" ;;
        -ip) ip="$value" ;;
        -port_worker) port_worker="$value" ;;
        -model_dir) own_model_dir="$value" ;;
    esac
done
[[ "$role" == server || -n "$port_worker" ]] \
    || die "a worker needs the front's -port_worker (and -ip, default localhost)"

model_args=()
if [[ -z "$own_model_dir" ]]; then
    if [[ -d "$model_dir" && -n "$(ls -A "$model_dir" 2>/dev/null)" ]]; then
        model_args=(-model_dir "$model_dir")
    else
        echo "entrypoint: nothing at $model_dir, serving the embedded default model" \
            "(all-MiniLM-L6-v2); to serve another, mount its folder there, e.g." \
            "docker run -v /path/to/uncased_L-12_H-768_A-12:$model_dir ..." >&2
    fi
fi

printf 'role=%q\nport=%q\nport_out=%q\nhttp_port=%q\nip=%q\nport_worker=%q\n' \
    "$role" "$port" "$port_out" "$http_port" "$ip" "$port_worker" >"$state_file" \
    || echo "entrypoint: cannot write $state_file; the health check will probe the defaults" >&2

exec "$command" "${model_args[@]}" -num_worker "$num_worker" "$@"
