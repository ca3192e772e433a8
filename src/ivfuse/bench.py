"""The benchmark report: quality tables, a speed table, comparison grids, bar charts, an HTML page.

``ivfuse bench --data DIR [--data DIR ...] --models a,b,c [--peer NAME=DIR ...] [--peers DIR] -o REPORT``

For every dataset each model fuses every pair (into ``REPORT/fused/<dataset>/<model>/``); peers
are folders of fused images someone else made. A rerun into the same report folder fuses again and
replaces the images an earlier run wrote there (each such folder is marked by ``.ivfuse_fused.json``,
naming the model and its weights), so a table never scores images from other weights; a folder at
that path without the mark is not touched: the run stops before its first fusion and asks for
another report folder. Everything is scored with :mod:`ivfuse.metrics` in the chosen convention.
Outputs, per dataset ``<ds>``:

* ``quality_<ds>.{md,csv,json,tex}``: mean of each metric per method, best and second best marked
  (the ``.tex`` a booktabs table for a paper);
* ``grid_<ds>.png``: infrared, visible and each method on a few pairs;
* ``bars_<ds>.png``: one bar chart per metric (needs the ``plot`` extra, matplotlib);

and once: ``speed.{md,csv,json}`` (parameters, GFLOPs at 640x480, median CPU latency per pair
after warm-up, peak memory; each model in a fresh process, :mod:`ivfuse.bench_speed`),
``index.html`` tying them together, and ``report.md``. The tables and figures are written by
:mod:`ivfuse.report`.

Options are checked before the first fusion. A bad pair (an empty or unreadable file, mis-sized
images) or a failing model does not end the run: it is listed in the report's Problems section
(``report.md``, ``index.html``, ``report.json``) and the quality tables compare the methods on the
images all of them have.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ._files import FUSED_MARKER, atomic_write
from .bench_speed import speed_csv, speed_markdown, speed_row
from .evaluation import MethodScores, comparison_table, find_fused, score_methods, write_rows_csv
from .io import IMAGE_EXTENSIONS, PairScan, find_pairs
from .report import html_page, json_text, markdown_rows, table_html, table_markdown, write_table
from .report.figures import bar_charts, comparison_grid

__all__ = ["BenchProblem", "Peer", "check_bench", "comparison_grid", "discover_peers", "run_bench", "speed_row"]


@dataclass(frozen=True)
class Peer:
    """Fused images made elsewhere: a name, a folder and the stem template of its files."""

    name: str
    folder: Path
    template: str = "{name}"


def dataset_label(root: Path) -> str:
    """A short name for a dataset folder (``.../test/tno`` -> ``tno``, ``.../MRI_PET`` -> ``MRI_PET``)."""
    name = root.name
    if name.lower() in ("input", "source", "test", "train") and root.parent.name:
        name = root.parent.name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def discover_peers(folder: str | os.PathLike, pair_names: Sequence[str]) -> list[Peer]:
    """Find the methods in a folder of published fused images.

    Two layouts are recognised: one subfolder per method (``fused/DenseFuse/01.png``), or one
    flat folder with ``<image>_<method>.<ext>`` files (VIFB's ``fused/carLight_ADF.jpg``).
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"'{root}': peers folder not found")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    if subdirs:
        return [Peer(p.name, p) for p in subdirs]
    methods: set[str] = set()
    names = sorted(pair_names, key=len, reverse=True)
    for f in root.iterdir():
        if f.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        for n in names:
            if f.stem.startswith(n + "_"):
                methods.add(f.stem[len(n) + 1 :])
                break
    return [Peer(m, root, "{name}_" + m) for m in sorted(methods)]


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchProblem:
    """Something the benchmark went on past.

    Attributes:
        dataset: dataset label ("" for the speed table).
        stage: "fuse", "score", "grid" or "speed".
        pair: pair name ("" when not about one pair).
        method: model or peer name ("" when about the pair itself).
        reason: what went wrong.
        metric: the metric not scored, for a "score" problem of one value.
    """

    dataset: str
    stage: str
    pair: str
    method: str
    reason: str
    metric: str = ""


def _problems_grouped(problems: Sequence[BenchProblem]) -> list[tuple[str, str, str, str, str]]:
    """(dataset, pair, stage, methods, reason) with the methods sharing one reason joined."""
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for p in problems:
        what = p.method + (f" {p.metric}" if p.metric else "")
        groups.setdefault((p.dataset, p.pair, p.stage, p.reason), []).append(what)
    return [(ds, pair, stage, ", ".join(dict.fromkeys(m for m in ms if m)), reason)
            for (ds, pair, stage, reason), ms in groups.items()]


def _problems_lead(problems: Sequence[BenchProblem]) -> str:
    pairs = sorted({f"{p.dataset}/{p.pair}" for p in problems if p.pair})
    if not pairs:
        return "The run went on past these problems."
    shown = ", ".join(pairs[:10]) + (f" and {len(pairs) - 10} more" if len(pairs) > 10 else "")
    return (f"Bad pairs ({len(pairs)}): {shown}. The run went on past them; each quality table compares the methods "
            "on the images all of them have.")


def problems_markdown(problems: Sequence[BenchProblem]) -> str:
    """The report's list of bad pairs (and anything else the run went on past)."""
    rows = [[ds, pair, stage, methods, reason.replace("|", "\\|").replace("\n", " ")]
            for ds, pair, stage, methods, reason in _problems_grouped(problems)]
    lines = ["## Problems", "", _problems_lead(problems), ""]
    lines += markdown_rows(["dataset", "pair", "stage", "method", "reason"], rows)
    return "\n".join(lines) + "\n"


def _problems_html(problems: Sequence[BenchProblem]) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in _problems_grouped(problems)
    )
    return (f"<h2>Problems</h2><p class='bad'>{html.escape(_problems_lead(problems))}</p>"
            "<table class='problems'><tr><th>dataset</th><th>pair</th><th>stage</th><th>method</th><th>reason</th></tr>"
            f"{rows}</table>")


@dataclass
class _Plan:
    """What :func:`run_bench` checked before its first fusion."""

    convention: str
    metrics: list[str]
    scans: list[tuple[str, Path, PairScan]]
    nets: dict[str, object]
    checkpoints: dict[str, Path]


def check_bench(
    datasets: Sequence[str | os.PathLike],
    models: Sequence[str],
    out_dir: str | os.PathLike,
    peers: Sequence[Peer] = (),
    peers_dirs: Sequence[str | os.PathLike] = (),
    metrics: Sequence[str] | None = None,
    convention: str | None = None,
    checkpoints: Mapping[str, str | os.PathLike] | None = None,
    threads: int = 2,
    grid_pairs: int = 3,
) -> _Plan:
    """Check every option of :func:`run_bench` before any work; build the models once.

    Raises:
        ValueError, FileNotFoundError, PermissionError: one line naming the bad option.
    """
    from .evaluation import check_metrics, check_output_dir
    from .metrics import DEFAULT_CONVENTION, list_metrics
    from .metrics.conventions import check_convention
    from .metrics.registry import resolve_metric
    from .models import create_model, get_model_entry

    conv = check_convention(convention or DEFAULT_CONVENTION)
    if metrics is not None and not list(metrics):
        raise ValueError("--metrics: no metric named")
    chosen = list(dict.fromkeys(resolve_metric(m) for m in metrics)) if metrics is not None else list_metrics(conv)
    if "ROI-SSIM" in chosen:
        raise ValueError("ROI-SSIM is not scored by bench (it has no regions); use `ivfuse eval --roi`")
    metric_names = check_metrics(chosen, conv, None)
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    if grid_pairs < 0:
        raise ValueError(f"grid_pairs must be 0 or more, got {grid_pairs}")
    if not models:
        raise ValueError("no model to run: give --models a,b,c")
    if len(set(models)) != len(models):
        raise ValueError(f"a model is named twice in {', '.join(models)}")
    entries = {m: get_model_entry(m) for m in models}  # a typo fails here
    cks: dict[str, Path] = {}
    for name, file in (checkpoints or {}).items():
        p = Path(file)
        if name not in entries:
            raise ValueError(f"checkpoint '{p}' is for '{name}', which is not among the models ({', '.join(models)})")
        if not p.is_file():
            raise FileNotFoundError(f"checkpoint '{p}' for '{name}': file not found")
        if p.suffix.lower() != ".safetensors":
            raise ValueError(f"checkpoint '{p}' for '{name}': only .safetensors files are loaded")
        cks[name] = p
    scans = []
    labels: dict[str, Path] = {}
    for ds in datasets:
        root = Path(ds)
        if not root.is_dir():
            raise FileNotFoundError(f"'{root}': dataset folder not found")
        scan = find_pairs(root)
        if not scan.pairs:
            raise ValueError(f"'{root}': no infrared/visible pairs found in '{scan.ir_dir}' and '{scan.vis_dir}'")
        label = dataset_label(root)
        if label in labels:
            raise ValueError(f"datasets '{labels[label]}' and '{root}' would both be reported as '{label}'")
        labels[label] = root
        scans.append((label, root, scan))
    if not scans:
        raise ValueError("no dataset: give --data DIR")
    for peer in peers:
        if not Path(peer.folder).is_dir():
            raise FileNotFoundError(f"'{peer.folder}': folder of peer '{peer.name}' not found")
        if peer.name in entries:
            raise ValueError(f"peer '{peer.name}' has the name of a model; rename it")
        find_fused(peer.folder, [], peer.template)  # a bad template fails here
    for pd in peers_dirs:
        if not Path(pd).is_dir():
            raise FileNotFoundError(f"'{pd}': peers folder not found")
    nets: dict[str, object] = {}
    for name, entry in entries.items():
        if name in cks:
            try:
                nets[name] = create_model(name, pretrained=False, checkpoint_path=cks[name])
            except (ValueError, OSError, RuntimeError) as exc:
                msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ValueError(f"checkpoint '{cks[name]}' does not load into '{name}': {msg}") from None
        elif entry.trainable and entry.weights_status() != "available":
            raise ValueError(f"model '{name}' has no shipped weights; give --checkpoint {name}=FILE.safetensors")
        else:
            nets[name] = create_model(name, pretrained=entry.trainable)
    check_output_dir(out_dir)
    for label, _root, _scan in scans:
        for name in entries:
            dest = Path(out_dir) / "fused" / label / name
            if dest.is_dir() and any(dest.iterdir()) and not (dest / FUSED_MARKER).is_file():
                raise ValueError(f"'{dest}' holds files that ivfuse bench did not write; give another report "
                                 "folder (-o) or move them")
    return _Plan(conv, list(metric_names), scans, nets, cks)


def run_bench(
    datasets: Sequence[str | os.PathLike],
    models: Sequence[str],
    out_dir: str | os.PathLike,
    peers: Sequence[Peer] = (),
    peers_dirs: Sequence[str | os.PathLike] = (),
    metrics: Sequence[str] | None = None,
    convention: str | None = None,
    grid_pairs: int = 3,
    speed: bool = True,
    threads: int = 2,
    progress: bool = True,
    log=print,
    checkpoints: Mapping[str, str | os.PathLike] | None = None,
) -> dict:
    """Run the whole benchmark and write the report. Returns a summary dict (also ``report.json``).

    Every option is checked first (:func:`check_bench`). The run then goes on past a bad pair
    (unreadable, empty, mis-sized) and past a failing model, in fusing, scoring, the grids and the
    speed table: what it went on past is in ``summary["problems"]`` (:class:`BenchProblem` as dicts)
    and in the report's Problems section, and the quality tables compare the methods on the images
    all of them have.

    Args:
        datasets: dataset folders (each with infrared/visible subfolders).
        models: registered model names to run.
        out_dir: report folder.
        peers: explicit peers, applied to every dataset where their images are found.
        peers_dirs: folders discovered with :func:`discover_peers`; a method found there is scored
            on a dataset only if it has a fused image for every pair of it.
        metrics, convention: what to score (default: the convention's table).
        grid_pairs: pairs shown in each comparison grid.
        speed: also measure the speed table.
        checkpoints: model name -> ``.safetensors`` weights to use instead of the shipped ones
            (for a model the user trained).
    """
    from .api import fuse_folder
    from .models.registry import model_identity

    plan = check_bench(datasets, models, out_dir, peers, peers_dirs, metrics, convention, checkpoints, threads,
                       grid_pairs)
    conv, metric_names = plan.convention, plan.metrics
    out = Path(out_dir)
    problems: list[BenchProblem] = []
    summary: dict = {"convention": conv, "metrics": metric_names, "datasets": {}, "speed": [],
                     "checkpoints": {k: str(v) for k, v in plan.checkpoints.items()}, "problems": []}
    md_parts = [f"# ivfuse benchmark\n\nConvention: `{conv}`.\n"]
    if plan.checkpoints:
        md_parts.append("Weights: " + ", ".join(f"`{k}` from `{v}`" for k, v in plan.checkpoints.items()) + ".\n")
    html_parts = []
    # Which weights fuse each model's images (a checkpoint's sha256 is read once, not per dataset).
    marks = {m: json_text({"model": m, "weights": model_identity(m, plan.checkpoints.get(m))}) for m in models}
    for label, root, scan in plan.scans:
        names = [p.name for p in scan.pairs]
        log(f"[{label}] {len(names)} pairs")
        methods: list[MethodScores] = []
        fused_dirs: dict[str, tuple[Path, str]] = {}
        not_fused: dict[str, dict[str, str]] = {}
        for model in models:
            dest = out / "fused" / label / model
            dest.mkdir(parents=True, exist_ok=True)
            atomic_write(dest / FUSED_MARKER, marks[model])
            # Bench's own folder: fuse again, so the images are this run's weights' and not an earlier run's.
            res = fuse_folder(root, dest, plan.nets[model], progress=progress, overwrite=True)
            not_fused[model] = dict(res.failed)
            for n, msg in res.failed:
                problems.append(BenchProblem(label, "fuse", n, model, msg))
            if res.failed:
                log(f"[{label}] {model}: {len(res.failed)} pairs failed: {res.failed[:3]}")
            fused_dirs[model] = (dest, "{name}")
        for peer in peers:  # explicit peers: scored wherever they have images (missing ones are reported)
            found = find_fused(peer.folder, names, peer.template)
            if any(v is not None for v in found.values()):
                fused_dirs[peer.name] = (peer.folder, peer.template)
        for pd in peers_dirs:  # discovered peers belong to the dataset they fully cover
            for peer in discover_peers(pd, names):
                found = find_fused(peer.folder, names, peer.template)
                if all(v is not None for v in found.values()):
                    fused_dirs[peer.name] = (peer.folder, peer.template)
        fused_paths = {name: find_fused(folder, names, template) for name, (folder, template) in fused_dirs.items()}
        for model, failed in not_fused.items():  # never score an older file left where a fusion failed
            for n in failed:
                fused_paths[model][n] = None
        for ms in score_methods(fused_paths, scan.pairs, metric_names, conv, progress=progress):
            failed = not_fused.get(ms.name, {})
            ms.problems = [(n, f"not fused ({failed[n]})" if n in failed else msg) for n, msg in ms.problems]
            for u in ms.unscored(metric_names):
                if u.metric is None and u.image in failed:
                    continue  # already listed as a fusion failure
                problems.append(BenchProblem(label, "score", u.image, ms.name, u.reason, u.metric or ""))
                log(f"[{label}] {u}")
            methods.append(ms)
            write_rows_csv(ms, out / "per_image" / label / f"{ms.name}.csv", metric_names)
        table = comparison_table(methods, metric_names, names)
        title = f"{label}: {len(names)} pairs, convention {conv}"
        write_table(table, out, stem=f"quality_{label}", title=title)
        md_parts.append(table_markdown(table, title))
        grid_rows = []
        for pp in scan.pairs[:grid_pairs]:
            row = [(pp.name, "infrared", pp.ir), (pp.name, "visible", pp.vis)]
            for name in models:
                f = fused_paths[name].get(pp.name)
                if f is not None:
                    row.append((pp.name, name, f))
            grid_rows.append(row)
        grid = None
        if grid_rows:
            errors: list[tuple[str, str, str]] = []
            grid = comparison_grid([[(label_, p) for _, label_, p in row] for row in grid_rows],
                                   out / f"grid_{label}.png", errors=errors)
            pair_of = {str(p): n for row in grid_rows for n, _, p in row}
            for col, path, msg in errors:
                problems.append(BenchProblem(label, "grid", pair_of.get(path, ""), col, msg))
        bars = bar_charts(table, out / f"bars_{label}.png", title)
        summary["datasets"][label] = {"path": str(root), "pairs": len(names), "table": table}
        html_parts.append(f"<h2>{html.escape(title)}</h2>{table_html(table)}")
        if grid:
            html_parts.append(f'<p><img src="{grid.name}" alt="comparison grid {html.escape(label)}"></p>')
        if bars:
            html_parts.append(f'<p><img src="{bars.name}" alt="metric bars {html.escape(label)}"></p>')
    if speed:
        rows = []
        for model in models:
            log(f"[speed] {model}")
            try:
                rows.append(speed_row(model, threads=threads, checkpoint=plan.checkpoints.get(model)))
            except (RuntimeError, ValueError, OSError) as exc:  # one model's measurement must not end the report
                problems.append(BenchProblem("", "speed", "", model, str(exc)))
                log(f"[speed] {model}: {exc}")
        summary["speed"] = rows
        sp = speed_markdown(rows, 480, 640, threads)
        atomic_write(out / "speed.md", sp)
        atomic_write(out / "speed.json", json_text(rows))
        atomic_write(out / "speed.csv", speed_csv(rows))
        md_parts.append(sp)
        html_parts.append("<h2>Speed</h2><pre>" + html.escape(sp) + "</pre>")
    summary["problems"] = [asdict(p) for p in problems]
    if problems:  # near the top, where a reader looks first
        md_parts.insert(1, problems_markdown(problems))
        html_parts.insert(0, _problems_html(problems))
    atomic_write(out / "report.md", "\n".join(md_parts))
    page = html_page("ivfuse benchmark", f"Convention: {html.escape(conv)}. <span class='best'>best</span>, "
                     "<span class='second'>second best</span>.", html_parts)
    atomic_write(out / "index.html", page)
    atomic_write(out / "report.json", json_text(summary))
    return summary
