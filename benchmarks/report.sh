#!/usr/bin/env bash
# The project's benchmark report: every shipped model and baseline on the test sets, the published
# methods' fused images (../shared/data/parity) as peers, then the Markdown tables copied to
# docs/benchmark/ and the demo-pair comparison grid to docs/assets/.
#
#   bash benchmarks/report.sh [REPORT_DIR]      # default runs/report; about 4 minutes on 2 idle cores
#
# SHARED (default ../shared) points at the data folder; THREADS (default 2) at the speed table's threads.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
OUT=${1:-runs/report}
THREADS=${THREADS:-2}
MODELS=${MODELS:-fusionnet_cpu,fgfusion_cpu,pomai_cpu,gff,laplacian,dwt,max,average}
METRICS=${METRICS:-EN,SD,SF,AG,MI,VIF,Qabf,SSIM,CC,SCD,PSNR,Nabf,Qcb,Qcv}
D=$SHARED/data

for need in "$D/test/tno" "$D/test/samples" "$D/test/msrs" "$D/parity/vifb/input" "$D/parity/tang/source"; do
  [ -d "$need" ] || { echo "report.sh: '$need' not found (set SHARED=...)" >&2; exit 2; }
done

ivfuse bench -q --threads "$THREADS" --models "$MODELS" --metrics "$METRICS" -o "$OUT" \
  --data "$D/test/tno" --data "$D/test/samples" \
  --data "$D/parity/vifb/input" --peers "$D/parity/vifb/fused" \
  --data "$D/parity/tang/source" --peers "$D/parity/tang/fused" \
  --data "$D/test/msrs" --peers "$D/test/msrs/fused" \
  --data "$D/test/medical/MRI_CT" --data "$D/test/medical/MRI_PET" --data "$D/test/medical/MRI_SPECT"

# The same TNO table under the cddfuse convention (CDDFuse's evaluator, used by most recent papers).
# With test/msrs beside it, for the seeds' published rows (benchmarks/seed_rows.py).
ivfuse bench -q --no-speed --convention cddfuse --models "$MODELS" -o "$OUT/cddfuse" \
  --metrics EN,SD,SF,AG,MI,SCD,VIF,Qabf,SSIM --data "$D/test/tno" --data "$D/test/msrs" --peers "$D/test/msrs/fused"

# The README grid: the synthetic demo pair (no dataset images in the repository).
demo=$(mktemp -d)
trap 'rm -rf "$demo"' EXIT
ivfuse demo -o "$demo/out" >/dev/null
mkdir -p "$demo/ds/ir" "$demo/ds/vi"
cp "$demo/out/demo_ir.png" "$demo/ds/ir/demo.png"
cp "$demo/out/demo_vis.png" "$demo/ds/vi/demo.png"
ivfuse bench -q --no-speed --models "$MODELS" --metrics EN,SD,SF,AG,MI,VIF,Qabf,SSIM -o "$OUT/demo" --data "$demo/ds"

mkdir -p docs/benchmark docs/assets
cp "$OUT"/quality_*.md "$OUT"/quality_*.csv "$OUT"/speed.md docs/benchmark/
cp "$OUT/cddfuse/quality_tno.md" docs/benchmark/quality_tno_cddfuse.md
cp "$OUT/cddfuse/quality_tno.csv" docs/benchmark/quality_tno_cddfuse.csv
cp "$OUT/cddfuse/quality_msrs.md" docs/benchmark/quality_msrs_cddfuse.md
cp "$OUT/cddfuse/quality_msrs.csv" docs/benchmark/quality_msrs_cddfuse.csv
cp "$OUT/demo/grid_ds.png" docs/assets/grid_demo.png
python benchmarks/targets.py "$OUT" --out docs/benchmark/targets.md
python benchmarks/seed_rows.py "$OUT/cddfuse" --out docs/benchmark/seeds.md
echo "tables in docs/benchmark/, grid in docs/assets/grid_demo.png, full report $OUT/index.html"
