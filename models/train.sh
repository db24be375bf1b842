#!/usr/bin/env bash
# Reproduce detector.onnx, reader.onnx and samples/ from scratch (fixed seeds, CPU only, ~1.5-2 h on
# 2 cores). Needs: python with torch numpy pillow onnx onnxruntime; fonts listed in MODEL_CARD.md
# (Debian: fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-freefont-ttf fonts-urw-base35);
# the development photos in $PLATES_DIR (default /work/shared/data/plates; read-only, TRAIN split only).
# Usage: cd models && PYTHON=/path/to/venv/bin/python ./train.sh
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
NICE="nice -n 10"
mkdir -p .work

# 1. synthetic data (deterministic seeds; written to the git-ignored .work/)
[ -f .work/synth_reader_40k.npz ]     || $NICE $PY gen_data.py reader 40000 1 .work/synth_reader_40k.npz
[ -f .work/easy_8k.npz ]              || $NICE $PY gen_data.py easy 8000 3 .work/easy_8k.npz
[ -f .work/synth_reader_24k_s3.npz ]  || $NICE $PY gen_data.py reader 24000 3 .work/synth_reader_24k_s3.npz
[ -f .work/synth_scenes_2k.pkl ]      || $NICE $PY gen_data.py scenes 2000 2 .work/synth_scenes_2k.pkl

# 2. detector, stage 1 (from scratch)
$NICE $PY train_detector.py --scenes .work/synth_scenes_2k.pkl --steps 1500 --threads 1 \
    --out .work/detector_v1.pt
$NICE $PY export.py detector .work/detector_v1.pt .work/detector_v1.onnx

# 3. reader, stage 1 (from scratch; the easy set gets CTC past its initial plateau)
$NICE $PY train_reader.py --synth .work/synth_reader_40k.npz --easy .work/easy_8k.npz --epochs 4 \
    --synth-frac 0.5 --model conv --out .work/reader_v2.pt

# 4. detector, stage 2 (fine-tune, more real scenes)
$NICE $PY train_detector.py --scenes .work/synth_scenes_2k.pkl --steps 1500 --lr 1e-3 --real-frac 0.5 \
    --init .work/detector_v1.pt --seed 4322 --threads 1 --out .work/detector_v2.pt

# 5. reader, stage 2 (fine-tune; real scene plates cropped with stage-1 detector boxes + wider jitter)
$NICE $PY train_reader.py --synth .work/synth_reader_40k.npz .work/synth_reader_24k_s3.npz --epochs 3 \
    --synth-frac 0.4 --crop-os 10 --region-os 30 --gt-jitter 0.12 --lr 1e-3 \
    --det-onnx .work/detector_v1.onnx --init .work/reader_v2.pt --seed 1235 --model conv \
    --out .work/reader_v3.pt

# 6. stage 3: short low-LR fine-tune of both (reader crops from stage-2 detector boxes)
$NICE $PY export.py detector .work/detector_v2.pt .work/detector_v2.onnx
$NICE $PY train_detector.py --scenes .work/synth_scenes_2k.pkl --steps 1000 --lr 5e-4 --real-frac 0.5 \
    --init .work/detector_v2.pt --seed 4323 --threads 1 --out .work/detector_v3.pt
$NICE $PY train_reader.py --synth .work/synth_reader_40k.npz .work/synth_reader_24k_s3.npz --epochs 2 \
    --synth-frac 0.3 --crop-os 10 --region-os 30 --gt-jitter 0.12 --lr 5e-4 \
    --det-onnx .work/detector_v2.onnx --init .work/reader_v3.pt --seed 1236 --threads 1 --model conv \
    --out .work/reader_v4.pt

# 7. export, demo samples (synthetic only), evaluation
$NICE $PY export.py reader .work/reader_v4.pt reader.onnx conv
$NICE $PY export.py detector .work/detector_v3.pt detector.onnx
$NICE $PY synth.py --samples samples
$NICE $PY eval_reference.py --latency
$NICE $PY eval_reference.py --scenes-dir samples
