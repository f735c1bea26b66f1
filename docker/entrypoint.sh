#!/usr/bin/env bash
# Container entrypoint of bert-as-service.
#
#   entrypoint.sh [NUM_WORKER] [bert-serving-start arguments...]
#   entrypoint.sh --healthcheck
#
# The first argument, when it is a number, is the worker count (default: $NUM_WORKER or 1);
# everything else goes to bert-serving-start unchanged. The model is read from
# $BERT_MODEL_DIR (default /model, where `docker run -v /path/to/bert:/model` mounts it)
# unless the arguments name a -model_dir themselves. The ports in use are written to
# $BERT_SERVING_STATE so that `--healthcheck` knows what to probe: the HTTP /health
# endpoint when -http_port is set, else a ZeroMQ handshake with BertClient.
set -euo pipefail

model_dir="${BERT_MODEL_DIR:-/model}"
state_file="${BERT_SERVING_STATE:-/tmp/bert-serving.ports}"
python="${PYTHON:-python}"

die() {
    echo "entrypoint: $*" >&2
    exit 2
}

healthcheck() {
    local port=5555 port_out=5556 http_port=""
    if [[ -r "$state_file" ]]; then
        # shellcheck source=/dev/null
        source "$state_file"
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

num_worker="${NUM_WORKER:-1}"
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
    num_worker="$1"
    shift
fi
[[ "$num_worker" =~ ^[0-9]+$ && "$num_worker" -ge 1 ]] \
    || die "the worker count must be a whole number of at least 1, got '$num_worker'"

# read the ports (and whether a -model_dir is given) from the arguments, as argparse would
port=5555 port_out=5556 http_port="" own_model_dir=""
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
        -model_dir) own_model_dir="$value" ;;
    esac
done

model_args=()
if [[ -z "$own_model_dir" ]]; then
    [[ -d "$model_dir" ]] || die "no model at $model_dir: mount a BERT folder there, e.g. \
docker run -v /path/to/uncased_L-12_H-768_A-12:$model_dir ... (or pass -model_dir)"
    model_args=(-model_dir "$model_dir")
fi

printf 'port=%q\nport_out=%q\nhttp_port=%q\n' "$port" "$port_out" "$http_port" >"$state_file" \
    || echo "entrypoint: cannot write $state_file; the health check will probe the defaults" >&2

exec bert-serving-start "${model_args[@]}" -num_worker "$num_worker" "$@"
