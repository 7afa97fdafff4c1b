#!/bin/bash
# trtllm 1.0: one replica of the plan
# Run on every node of the job: NODE_RANK (0 leads) and LEADER_ADDRESS / MASTER_ADDR name the node and the first node when it spans more than one.
set -euo pipefail
cd "$(dirname "$0")"
export NODE_RANK=${NODE_RANK:-0}
export LEADER_ADDRESS=${LEADER_ADDRESS:-127.0.0.1} MASTER_ADDR=${MASTER_ADDR:-${LEADER_ADDRESS}}
export MODEL="${MODEL:-meta-llama/Llama-3.1-70B}"
trtllm-serve "${MODEL}" --backend pytorch --tp_size 4 --pp_size 1 --max_batch_size 32 --max_num_tokens 8192 --max_seq_len 4500 --kv_cache_free_gpu_memory_fraction 0.90 --host 0.0.0.0 --port 8000 --extra_llm_api_options extra-llm-api-options.yaml
