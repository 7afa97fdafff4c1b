#!/bin/bash
# vllm 0.11.0: one replica of the plan
# Run on every node of the job: NODE_RANK (0 leads) and LEADER_ADDRESS / MASTER_ADDR name the node and the first node when it spans more than one.
set -euo pipefail
cd "$(dirname "$0")"
export NODE_RANK=${NODE_RANK:-0}
export LEADER_ADDRESS=${LEADER_ADDRESS:-127.0.0.1} MASTER_ADDR=${MASTER_ADDR:-${LEADER_ADDRESS}}
export MODEL="${MODEL:-meta-llama/Llama-3.1-70B}"
vllm serve "${MODEL}" --tensor-parallel-size 4 --pipeline-parallel-size 1 --max-num-seqs 2 --max-model-len 8400 --max-num-batched-tokens 8192 --gpu-memory-utilization 0.90 --block-size 16 --quantization fp8 --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' --host 0.0.0.0 --port 8000
