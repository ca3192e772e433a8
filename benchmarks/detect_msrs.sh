#!/usr/bin/env bash
# Detection on MSRS as a downstream test of fusion (PoMAI Table 4 layout): YOLOv8n from scratch, trained on
# train/msrs and evaluated on test/msrs for the visible, infrared and four fused inputs, 3 seeds each, one CPU thread.
# Needs the detect extra (Ultralytics) installed beside ivfuse, e.g. in its own venv (see docs/downstream.md).
# Results: OUT/detect.{md,csv,json,tex}, OUT/detect_per_class.png; recorded in docs/downstream.md "Detection".
#
#   IVFUSE=.venv-detect/bin/ivfuse benchmarks/detect_msrs.sh [OUT]
#
# Settings can be changed through the environment: EPOCHS, IMGSZ, BATCH, SEEDS, THREADS, DEVICE (cpu, cuda), DATA.
set -euo pipefail
IVFUSE=${IVFUSE:-ivfuse}
DATA=${DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
OUT=${1:-/tmp/detect_msrs}
EPOCHS=${EPOCHS:-3}
IMGSZ=${IMGSZ:-256}
BATCH=${BATCH:-8}
SEEDS=${SEEDS:-3}
THREADS=${THREADS:-1}
DEVICE=${DEVICE:-cpu}
for d in "$DATA/train/msrs" "$DATA/test/msrs"; do
  [ -d "$d" ] || { echo "detect_msrs.sh: '$d' not found (set DATA)" >&2; exit 1; }
done
start=$(date +%s)
# --resume keeps the runs (and fused images) a previous call finished, so an interrupted benchmark continues.
/usr/bin/env time -f "detect_msrs: %e s wall, %U s user, %S s system" \
  "$IVFUSE" downstream detect --train "$DATA/train/msrs" --test "$DATA/test/msrs" --sources vis,ir \
  --fused fusionnet_cpu --fused gff --fused fgfusion_cpu --fused pomai_cpu \
  --epochs "$EPOCHS" --imgsz "$IMGSZ" --batch "$BATCH" --seeds "$SEEDS" --model-yaml yolov8n.yaml \
  --device "$DEVICE" --threads "$THREADS" --resume -q -o "$OUT"
echo "detect_msrs: done in $(( $(date +%s) - start )) s; tables in $OUT/detect.md"
