#!/usr/bin/env bash
# Train the paper-size networks (pomai, fgfusion, fusionnet) with their paper presets on one GPU,
# in a fixed wall-time budget for all three (default 9 minutes), on RoadScene + MSRS.
#
#   bash benchmarks/gpu_train.sh OUT_DIR
#
# Each model first trains a short probe (PROBE_STEPS steps) to measure its seconds per step on this
# machine; the real run then gets as many steps as fit its share of the budget (the paper preset's
# schedule and stages scaled to that length by `ivfuse train --steps`). Weights and cards land in
# OUT_DIR/<model>/<model>.safetensors and .json; OUT_DIR/summary.json says what each run got.
#
# Environment (all optional):
#   SHARED=../shared      the data folder's parent        DEVICE=cuda     training device
#   BUDGET_S=540          wall seconds for everything      MODELS="pomai fgfusion fusionnet"
#   PROBE_STEPS=30        probe length                     STEPS=N         skip the probes, N steps each
#   DATA="DIR DIR"        training folders (default train/roadscene and train/msrs)
#   CROP=, BATCH=         override the presets' crop and batch (e.g. for a CPU smoke run)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash benchmarks/gpu_train.sh OUT_DIR}
SHARED=${SHARED:-../shared}
DEVICE=${DEVICE:-cuda}
BUDGET_S=${BUDGET_S:-540}
PROBE_STEPS=${PROBE_STEPS:-30}
MODELS=${MODELS:-pomai fgfusion fusionnet}
DATA=${DATA:-"$SHARED/data/train/roadscene $SHARED/data/train/msrs"}
PY=${PYTHON:-python}

data_args=()
for d in $DATA; do
  [ -d "$d" ] || { echo "gpu_train.sh: training folder '$d' not found (set SHARED or DATA)" >&2; exit 2; }
  data_args+=(--data "$d")
done
extra=()
[ -n "${CROP:-}" ] && extra+=(--crop "$CROP")
[ -n "${BATCH:-}" ] && extra+=(--batch-size "$BATCH")
mkdir -p "$OUT"
start=$(date +%s)
n_models=$(wc -w <<<"$MODELS")

# Seconds per step of a finished run, from the log rows after the first (warm-up) one.
sec_per_step() {
  "$PY" - "$1" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/log.jsonl") if '"kind": "train"' in l]
rows = rows[1:] or rows
print(sum(r["sec_per_step"] for r in rows) / len(rows))
EOF
}

summary="$OUT/summary.jsonl"
: >"$summary"
i=0
for m in $MODELS; do
  i=$((i + 1))
  left=$(( BUDGET_S - ($(date +%s) - start) ))
  share=$(( left / (n_models - i + 1) ))
  if [ -n "${STEPS:-}" ]; then
    steps=$STEPS
  else
    rm -rf "$OUT/probe_$m"
    "$PY" -m ivfuse.cli train --model "$m" --preset paper "${data_args[@]}" "${extra[@]}" --device "$DEVICE" \
      --steps "$PROBE_STEPS" --log-every 5 --checkpoint-every 0 --val-every 0 -q --out "$OUT/probe_$m" >/dev/null
    sps=$(sec_per_step "$OUT/probe_$m")
    rm -rf "$OUT/probe_$m"
    left=$(( BUDGET_S - ($(date +%s) - start) ))
    share=$(( left / (n_models - i + 1) ))
    # 85 % of the share for steps: start-up, data check and export take the rest.
    steps=$("$PY" -c "print(max(10, int(0.85 * $share / max($sps, 1e-4))))")
    echo "$m: $sps s/step in the probe; $steps steps for a ${share} s share" >&2
  fi
  t0=$(date +%s)
  "$PY" -m ivfuse.cli train --model "$m" --preset paper "${data_args[@]}" "${extra[@]}" --device "$DEVICE" \
    --steps "$steps" --checkpoint-every 500 --val-every 0 -q --out "$OUT/$m"
  echo "{\"model\": \"$m\", \"steps\": $steps, \"wall_s\": $(( $(date +%s) - t0 ))}" >>"$summary"
done
"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
runs = [json.loads(l) for l in (out / "summary.jsonl").read_text().splitlines() if l.strip()]
(out / "summary.json").write_text(json.dumps(runs, indent=1) + "\n")
(out / "summary.jsonl").unlink()
for r in runs:
    print(f"{r['model']}: {r['steps']} steps, {r['wall_s']} s -> {out / r['model'] / (r['model'] + '.safetensors')}")
EOF
echo "total: $(( $(date +%s) - start )) s (budget ${BUDGET_S} s)"
