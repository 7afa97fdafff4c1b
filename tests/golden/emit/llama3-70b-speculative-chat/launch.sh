#!/bin/bash
# sglang 0.5.2: one replica of the plan
# Run on every node of the job: NODE_RANK (0 leads) and LEADER_ADDRESS / MASTER_ADDR name the node and the first node when it spans more than one.
set -euo pipefail
cd "$(dirname "$0")"
export NODE_RANK=${NODE_RANK:-0}
export LEADER_ADDRESS=${LEADER_ADDRESS:-127.0.0.1} MASTER_ADDR=${MASTER_ADDR:-${LEADER_ADDRESS}}
export MODEL="${MODEL:-meta-llama/Llama-3.1-70B}"
python3 -m sglang.launch_server --model-path "${MODEL}" --tp-size 8 --pp-size 1 --max-running-requests 16 --context-length 1536 --chunked-prefill-size 8192 --mem-fraction-static 0.831 --page-size 1 --quantization fp8 --speculative-algorithm EAGLE3 --speculative-draft-model-path yuhuili/EAGLE3-LLaMA3.3-Instruct-70B --speculative-num-steps 3 --speculative-eagle-topk 1 --speculative-num-draft-tokens 4 --host 0.0.0.0 --port 30000
