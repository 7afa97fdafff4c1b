#!/bin/bash
# torchtitan 0.2.2: the plan's training job
# Run on every node of the job: NODE_RANK (0 leads) and LEADER_ADDRESS / MASTER_ADDR name the node and the first node when it spans more than one.
set -euo pipefail
cd "$(dirname "$0")"
export NODE_RANK=${NODE_RANK:-0}
export LEADER_ADDRESS=${LEADER_ADDRESS:-127.0.0.1} MASTER_ADDR=${MASTER_ADDR:-${LEADER_ADDRESS}}
torchrun --nnodes=1024 --nproc-per-node=8 "--node-rank=${NODE_RANK}" "--master-addr=${MASTER_ADDR}" --master-port=29500 -m torchtitan.train --job.config_file torchtitan.toml
