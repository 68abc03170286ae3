#!/usr/bin/env bash
# Entrypoint of the voicecart engine image: runs `voicecart <args>`, translating the arguments
# KServe appends to a transformer container (--model_name NAME --predictor_host HOST --http_port P,
# kserve/pkg/apis/serving/v1beta1/transformer_custom.go) into `voicecart serve` flags, which
# would otherwise refuse them as unknown options.
#   --model_name N      -> VOICECART_SERVING__MODEL_NAME=N (unless already set)
#   --predictor_host H  -> --triton-url H:80 (only if no --triton-url was given)
#   --http_port P       -> --port P
set -euo pipefail
args=()
predictor_host=""
has_triton=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model_name|--predictor_host|--http_port)
      [ $# -ge 2 ] || { echo "voicecart-engine: $1 needs a value" >&2; exit 2; }
      flag="$1" value="$2"; shift 2 ;;
    --model_name=*|--predictor_host=*|--http_port=*)
      flag="${1%%=*}" value="${1#*=}"; shift ;;
    *)
      case "$1" in --triton-url|--triton-url=*) has_triton=1 ;; esac
      args+=("$1"); shift; continue ;;
  esac
  case "$flag" in
    --model_name) export VOICECART_SERVING__MODEL_NAME="${VOICECART_SERVING__MODEL_NAME:-$value}" ;;
    --predictor_host) predictor_host="$value" ;;
    --http_port) args+=("--port=$value") ;;
  esac
done
if [ -n "$predictor_host" ] && [ -z "$has_triton" ]; then
  case "$predictor_host" in *:*) args+=("--triton-url=$predictor_host") ;; *) args+=("--triton-url=$predictor_host:80") ;; esac
fi
exec "${VOICECART_BIN:-voicecart}" "${args[@]}"
