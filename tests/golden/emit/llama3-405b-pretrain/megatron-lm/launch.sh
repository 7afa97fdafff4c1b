#!/bin/bash
# megatron-lm core_v0.13: the plan's training job
# Run on every node of the job: NODE_RANK (0 leads) and LEADER_ADDRESS / MASTER_ADDR name the node and the first node when it spans more than one.
set -euo pipefail
cd "$(dirname "$0")"
export NODE_RANK=${NODE_RANK:-0}
export LEADER_ADDRESS=${LEADER_ADDRESS:-127.0.0.1} MASTER_ADDR=${MASTER_ADDR:-${LEADER_ADDRESS}}
: "${LR:?set LR, the peak learning rate (Megatron --lr)}"
torchrun --nnodes=1024 --nproc-per-node=8 "--node-rank=${NODE_RANK}" "--master-addr=${MASTER_ADDR}" --master-port=29500 pretrain_gpt.py --tensor-model-parallel-size 8 --pipeline-model-parallel-size 16 --context-parallel-size 1 --num-virtual-stages-per-pipeline-rank 4 --account-for-embedding-in-pipeline-split --account-for-loss-in-pipeline-split --sequence-parallel --num-layers 126 --hidden-size 16384 --ffn-hidden-size 53248 --num-attention-heads 128 --group-query-attention --num-query-groups 8 --swiglu --untie-embeddings-and-output-weights --normalization RMSNorm --position-embedding-type rope --disable-bias-linear --seq-length 8192 --max-position-embeddings 131072 --micro-batch-size 1 --global-batch-size 2048 --train-iters 929833 --bf16 --fp8-format hybrid --use-distributed-optimizer --overlap-grad-reduce --overlap-param-gather --tp-comm-overlap --vocab-size 128256 --tokenizer-type NullTokenizer --mock-data --lr "${LR}"
