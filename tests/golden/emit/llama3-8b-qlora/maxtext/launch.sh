#!/bin/bash
# maxtext main@e591f30c: the plan's training job
# Run on every node of the job: NODE_RANK (0 leads) and LEADER_ADDRESS / MASTER_ADDR name the node and the first node when it spans more than one.
set -euo pipefail
cd "$(dirname "$0")"
export NODE_RANK=${NODE_RANK:-0}
export LEADER_ADDRESS=${LEADER_ADDRESS:-127.0.0.1} MASTER_ADDR=${MASTER_ADDR:-${LEADER_ADDRESS}}
: "${LORA_ALPHA:?set LORA_ALPHA, the adapters alpha (scale = alpha / rank)}"
: "${MAXTEXT_CKPT_PATH:?set MAXTEXT_CKPT_PATH, the base model checkpoint in MaxText format}"
: "${OUTPUT_DIR:?set OUTPUT_DIR, the gs:// folder MaxText writes checkpoints and logs to}"
python3 -m maxtext.trainers.post_train.sft.train_sft "run_name=${RUN_NAME:-planner}" model_name=llama3.1-8b "base_output_directory=${OUTPUT_DIR}" "load_parameters_path=${MAXTEXT_CKPT_PATH}" steps=1145 max_target_length=4096 per_device_batch_size=4 ici_fsdp_parallelism=1 ici_data_parallelism=16 ici_tensor_parallelism=1 ici_pipeline_parallelism=1 dcn_data_parallelism=1 remat_policy=minimal enable_nnx=True pure_nnx_decoder=True lora.enable_lora=True lora.lora_rank=16 "lora.lora_alpha=${LORA_ALPHA}" lora.lora_weight_qtype=nf4
