#!/bin/bash
# maxtext tpu-recipes-v0.1.5: the plan's training job
# Run on every node of the job: NODE_RANK (0 leads) and LEADER_ADDRESS / MASTER_ADDR name the node and the first node when it spans more than one.
set -euo pipefail
cd "$(dirname "$0")"
export NODE_RANK=${NODE_RANK:-0}
export LEADER_ADDRESS=${LEADER_ADDRESS:-127.0.0.1} MASTER_ADDR=${MASTER_ADDR:-${LEADER_ADDRESS}}
: "${OUTPUT_DIR:?set OUTPUT_DIR, the gs:// folder MaxText writes checkpoints and logs to}"
python3 -m MaxText.train src/MaxText/configs/base.yml "run_name=${RUN_NAME:-planner}" model_name=llama3-8b "base_output_directory=${OUTPUT_DIR}" dataset_type=synthetic steps=357628 max_target_length=8192 per_device_batch_size=2 ici_fsdp_parallelism=256 ici_data_parallelism=1 ici_tensor_parallelism=1 ici_pipeline_parallelism=1 dcn_data_parallelism=1 remat_policy=full
