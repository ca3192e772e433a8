"""The training loop: stages, checkpoints, resume, logging, validation, DDP, mixed precision.

:func:`train` runs a :class:`~ivfuse.train.config.TrainConfig` into a run folder::

    RUN_DIR/
      config.json          the resolved configuration (``ivfuse train --resume`` reads it back)
      run.json             environment, dataset summary, stage plan
      log.jsonl            one JSON object per line: {"kind": "train"|"val", "step", ...}
      checkpoints/         step_XXXXXXXX/ folders (see :mod:`ivfuse.train.checkpoint`), latest
      <model>.safetensors  final weights
      <model>.json         their weight card (:class:`ivfuse.models.WeightCard`)

Determinism: the model is initialised under ``torch.manual_seed(seed)``; the data order and
crops are functions of (seed, step) (:class:`ivfuse.data.PairSampler`); before every step the
global torch RNG is re-seeded from (seed, step, rank), so anything random inside the model
(dropout, random projections) is a function of the step too. Hence a run resumed from any
checkpoint on the same machine and device ends with the same weights, bit for bit, as an
uninterrupted one (on CPU; CUDA kernels are not all deterministic).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import platform
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import DatasetError, PairedDataset, PairSampler, collate_pairs, training_pairs
from ..losses import build_loss
from .checkpoint import latest_checkpoint, load_checkpoint_dir, save_checkpoint, set_rng_state_from_flat
from .config import TrainConfig, config_from_dict, config_to_dict
from .distributed import DistContext, all_reduce_mean, init_distributed, shutdown_distributed
from .init_weights import InitSource, check_state_fits, load_init_weights, resolve_init_source
from .recipes import ensure_registered, plugin_modules
from .stages import apply_stage, build_optimizer, lr_at, plan_stages, select_parameters

__all__ = ["RunExistsError", "TrainResult", "build_model", "load_run_config", "step_seed", "train", "validate"]


class RunExistsError(ValueError):
    """The run folder already holds a run and ``resume`` was not asked for."""


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        run_dir: the run folder.
        weights: final safetensors file (None when the run was interrupted on purpose).
        card: the weight card json next to it.
        steps: optimizer steps done.
        history: the "train" log rows of this invocation (rank 0; empty elsewhere).
        val: the last validation results.
        model: the trained model (bare, not DDP-wrapped).
    """

    run_dir: Path
    weights: Path | None
    card: Path | None
    steps: int
    history: list[dict] = field(default_factory=list)
    val: dict[str, float] = field(default_factory=dict)
    model: nn.Module | None = None


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """The torch seed set before ``step`` on process ``rank``."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x57E9, int(step), int(rank)]).generate_state(1)[0])


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


class _JsonlLog:
    """Append-only JSONL log on rank 0; on resume, rows after the resumed step are dropped."""

    def __init__(self, path: Path, enabled: bool, resume_step: int | None) -> None:
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        if resume_step is not None and path.is_file():
            keep = []
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill
                if int(row.get("step", 0)) <= resume_step:
                    keep.append(line)
            path.write_text("".join(k + "\n" for k in keep))
        elif resume_step is None and path.exists():
            path.unlink()

    def write(self, row: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(row) + "\n")


def _amp_setup(cfg: TrainConfig, device: torch.device):
    """(autocast dtype or None, GradScaler or None)."""
    mode = (cfg.amp or "off").lower()
    if device.type != "cuda" or mode == "off":
        return None, None
    if mode == "auto":
        mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if mode not in ("bf16", "fp16"):
        raise ValueError(f"amp must be auto, bf16, fp16 or off, got {cfg.amp!r}")
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return dtype, scaler


def _autocast(device: torch.device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _split(out) -> tuple[torch.Tensor, dict]:
    if isinstance(out, tuple):
        fused, maps = out[0], (out[1] if len(out) > 1 and out[1] is not None else {})
    else:
        fused, maps = out, {}
    if not isinstance(fused, torch.Tensor):
        raise TypeError(f"the model returned {type(fused).__name__}, expected a tensor or (tensor, maps)")
    return fused, dict(maps)


def _to_device(batch: dict, device: torch.device) -> dict:
    out = dict(batch)
    nb = device.type == "cuda"
    for k in ("ir", "vis", "roi", "mask"):
        out[k] = batch[k].to(device, non_blocking=nb)
    return out


def _scalar(v: Any) -> float:
    return float(v.detach().float().item()) if isinstance(v, torch.Tensor) else float(v)


def _batches(loader, sampler: PairSampler, start_step: int):
    """Batches for global steps start_step, start_step + 1, ... forever."""
    epoch, pos = divmod(start_step, sampler.steps_per_epoch)
    while True:
        sampler.set_epoch(epoch)
        sampler.set_start(pos)
        yield from loader
        epoch, pos = epoch + 1, 0


def _restore_modes(model: nn.Module, modes: dict[nn.Module, bool]) -> None:
    for m, t in modes.items():
        m.training = t


def validate(
    model: nn.Module,
    dataset: PairedDataset,
    criterion: nn.Module | None,
    device: torch.device | str = "cpu",
    metrics: list[str] | tuple[str, ...] = (),
    amp_dtype=None,
    skipped: set[str] | None = None,
) -> dict[str, float]:
    """Fuse every pair of ``dataset`` (whole images) and average the loss terms and metrics.

    Metrics come from :func:`ivfuse.metrics.evaluate`, imported lazily; a metric that is missing
    or fails is skipped (and its name added to ``skipped``). The model's train/eval modes are
    restored afterwards.

    Returns:
        ``{"val_loss": ..., "val_<term>": ..., "<metric>": ...}`` averaged over the pairs.
    """
    from ..infer import crop_to, pad_to_multiple

    device = torch.device(device)
    skipped = skipped if skipped is not None else set()
    try:
        from ..metrics import evaluate
    except Exception:  # noqa: BLE001 (metrics missing or broken in this build: validate without them)
        evaluate = None
        skipped.update(metrics)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    mult = int(getattr(model, "pad_multiple", 1) or 1)
    try:
        with torch.no_grad():
            for i in range(len(dataset)):
                batch = _to_device(collate_pairs([dataset[i]]), device)
                size = batch["ir"].shape[-2:]
                ir_p, _ = pad_to_multiple(batch["ir"], mult)
                vis_p, _ = pad_to_multiple(batch["vis"], mult)
                with _autocast(device, amp_dtype):
                    fused, maps = _split(model(ir_p, vis_p, return_maps=True))
                fused = crop_to(fused, size).float()
                maps = {k: crop_to(v, size).float() for k, v in maps.items()}
                if criterion is not None:
                    _, terms = criterion(fused, maps, batch)
                    for k, v in terms.items():
                        key = "val_loss" if k == "loss" else f"val_{k}"
                        sums[key] += _scalar(v)
                        counts[key] += 1
                if evaluate is None:
                    continue
                f, a, b = (t[0, 0].clamp(0, 1).cpu() for t in (fused, batch["ir"], batch["vis"]))
                for name in metrics:
                    if name in skipped:
                        continue
                    try:
                        res = evaluate(f, a, b, metrics=[name])
                    except Exception:  # noqa: BLE001 (an unknown or failing metric is skipped, not fatal)
                        skipped.add(name)
                        continue
                    for k, v in res.items():
                        if isinstance(v, (int, float)) and math.isfinite(float(v)):
                            sums[k] += float(v)
                            counts[k] += 1
    finally:
        _restore_modes(model, modes)
    return {k: sums[k] / counts[k] for k in sums if counts[k]}


def _check_model(model: nn.Module, cfg: TrainConfig) -> None:
    if not any(True for _ in model.parameters()):
        raise ValueError(f"model '{cfg.model}' has no parameters to train (training-free method)")
    mult = int(getattr(model, "pad_multiple", 1) or 1)
    if cfg.data.crop % mult:
        raise ValueError(
            f"crop {cfg.data.crop} is not a multiple of {mult}, which model '{cfg.model}' needs; "
            f"use --crop {((cfg.data.crop + mult - 1) // mult) * mult}"
        )


def _card(cfg: TrainConfig, weights: Path, steps: int, model: nn.Module, val: dict, seconds: float,
          init_from: str = ""):
    from ..models import WeightCard
    from .._files import sha256_file
    from ..models.registry import count_parameters

    data = cfg.data.path or f"{cfg.data.ir_dir} + {cfg.data.vis_dir}"
    notes = (
        f"trained with ivfuse train, preset '{cfg.preset}', seed {cfg.seed}, {len(cfg.stages)} stage(s): "
        + ", ".join(f"{s.name} ({s.length} {s.unit})" for s in cfg.stages)
        + f"; {seconds / 60:.1f} min."
        + (f" Initialised from {init_from}, then fine-tuned." if init_from else "")
        + f" {cfg.description}".rstrip()
    )
    return WeightCard(
        file=weights.name,
        sha256=sha256_file(weights),
        training_data=str(data),
        steps=int(steps),
        metrics={k: round(float(v), 6) for k, v in val.items()},
        params=count_parameters(model),
        notes=notes,
    )


def _one_line(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())


def _read_json(path: Path, option: str) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{option}: '{path}' is unreadable ({_one_line(exc)})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{option}: '{path}' does not hold a JSON object")
    return data


def build_model(cfg: TrainConfig, init: InitSource | str | None = None) -> nn.Module:
    """The network a run starts from: ``cfg.model`` built under ``torch.manual_seed(cfg.seed)``.

    Args:
        cfg: the run's configuration (``model``, ``model_kwargs``, ``seed``).
        init: initial weights (an :class:`~ivfuse.train.init_weights.InitSource`, or a model name
            or .safetensors path as for ``--init-from``); None: the random initialisation. The
            loop passes ``cfg.init_from`` here for a run that starts at step 0.
    """
    from ..models import get_model_entry

    entry = get_model_entry(cfg.model)
    torch.manual_seed(cfg.seed)
    model = entry.fn(**cfg.model_kwargs)
    if isinstance(init, str):
        init = resolve_init_source(init)
    if init is not None:
        load_init_weights(model, init, cfg.model)
    return model


def _stage_params(model: nn.Module, stage) -> list[nn.Parameter]:
    """The parameters :func:`apply_stage` would train, in its order, without touching the model."""
    chosen = set(select_parameters(model, stage.train, stage.freeze))
    return [p for n, p in model.named_parameters() if n in chosen]


def _check_stages(model: nn.Module, plans) -> None:
    """Every stage selects parameters, builds its optimizer and evaluates its schedule (nothing is kept)."""
    for plan in plans:
        st = plan.stage
        try:
            build_optimizer(st.optimizer, _stage_params(model, st))
            for s in (0, plan.steps - 1):
                lr_at(st.optimizer, st.schedule, s, plan)
        except ValueError as exc:
            raise ValueError(f"setting 'stages.{plan.index}' (stage '{st.name}'): {_one_line(exc)}") from exc


def _read_checkpoint(path: Path) -> dict:
    """:func:`load_checkpoint_dir` with every failure turned into a one-line ``ValueError`` naming the folder."""
    from safetensors import SafetensorError

    try:
        ckpt = load_checkpoint_dir(path)
        int(ckpt["state"]["step"])
        rng = ckpt.get("rng")
        if rng is not None:
            t = rng[0].get("torch")
            if t is None or t.dtype != torch.uint8 or t.numel() != torch.get_rng_state().numel():
                raise ValueError("rng.safetensors holds no torch generator state")
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"--resume: checkpoint '{path}' cannot be used: {_one_line(exc)}; delete that folder "
                         "to resume from the one before it, if any") from exc
    return ckpt


def _check_resume_optimizer(model: nn.Module, ckpt: dict, path: Path, plans, step: int) -> None:
    """The checkpoint's stage and optimizer state fit the stage that ``step`` falls in (a throw-away optimizer)."""
    plan = next((p for p in plans if p.end > step), None)
    if plan is None or step <= plan.start or ckpt["optimizer"] is None:
        return  # the run is done, or the stage starts afresh
    idx = int(ckpt["state"].get("stage_index", -1))
    if idx != plan.index:
        raise ValueError(
            f"--resume: checkpoint '{path}' was saved in stage {idx}, but step {step} falls in stage {plan.index} "
            f"('{plan.stage.name}') of the configuration; keep the run's stages and --steps"
        )
    opt = build_optimizer(plan.stage.optimizer, _stage_params(model, plan.stage))
    try:
        opt.load_state_dict(ckpt["optimizer"])
        for group in opt.param_groups:
            for p in group["params"]:
                for k, v in opt.state.get(p, {}).items():
                    if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape != p.shape:
                        raise ValueError(f"state '{k}' is {tuple(v.shape)} for a parameter of {tuple(p.shape)}")
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"--resume: the optimizer state in '{path}' does not fit stage '{plan.stage.name}' "
                         f"({_one_line(exc)})") from exc


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def train(
    cfg: TrainConfig,
    out_dir: str | os.PathLike,
    resume: bool = False,
    progress: bool = True,
    interrupt_at: int | None = None,
    model: nn.Module | None = None,
) -> TrainResult:
    """Train ``cfg.model`` as ``cfg`` describes, writing into ``out_dir``.

    Args:
        cfg: the full configuration (see :func:`ivfuse.train.recipes.make_config`).
        out_dir: the run folder (created).
        resume: continue from the newest checkpoint in ``out_dir`` (starts from scratch if there
            is none yet).
        progress: show a progress bar (rank 0).
        interrupt_at: stop right after this global step, as if the process were killed (no
            final export); for tests.
        model: train this module instead of building ``cfg.model`` from the registry
            (``cfg.model`` still names the outputs). Build it the same way (same seed) when
            resuming.

    Returns:
        A :class:`TrainResult`.

    Raises:
        DatasetError: the training or validation data is unusable (before any training).
        RunExistsError: ``out_dir`` already holds a run and ``resume`` is False.
        ValueError: bad configuration (unknown model, stage prefix, schedule, ...).
        FloatingPointError: the loss became NaN or infinite.
    """
    ctx = init_distributed(cfg.device)
    threads = torch.get_num_threads()
    try:
        return _train(cfg, Path(out_dir), resume, progress, interrupt_at, ctx, model)
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)  # cfg.threads applies to the run only
        shutdown_distributed(ctx)


def _say(ctx: DistContext, msg: str) -> None:
    if ctx.is_main:
        print(msg, file=sys.stderr, flush=True)


def _train(cfg: TrainConfig, run_dir: Path, resume: bool, progress: bool, interrupt_at: int | None,
           ctx: DistContext, model: nn.Module | None = None) -> TrainResult:
    from ..models import get_model_entry

    t_start = time.time()
    cfg = copy.deepcopy(cfg)
    device = ctx.device
    if device.type == "cpu" and cfg.threads > 0:
        torch.set_num_threads(int(cfg.threads))

    # ---- Everything is checked before anything is written: a run that cannot start (or resume)
    # leaves the run folder exactly as it was.
    ensure_registered(cfg, check_model=model is None)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"--out '{run_dir}': a file is there, not a run folder")
    ckpt_path = latest_checkpoint(run_dir) if resume else None
    if not resume and ((run_dir / "checkpoints").is_dir() or (run_dir / "log.jsonl").is_file()):
        raise RunExistsError(f"'{run_dir}' already holds a run; pass --resume to continue it or choose another --out")
    cfg_file = run_dir / "config.json"
    old_cfg = _read_json(cfg_file, "--resume") if resume and cfg_file.is_file() else None

    # ---- model entry first (cheap), then data (fails fast), then the model
    entry = None
    if model is None:
        entry = get_model_entry(cfg.model)
        if not entry.trainable:
            raise ValueError(f"--model {cfg.model}: the method is training-free; pick a trainable model "
                             "(see `ivfuse models`)")
    if not cfg.model:
        cfg.model = type(model).__name__
    if old_cfg is not None and old_cfg.get("model") and old_cfg["model"] != cfg.model:
        raise ValueError(f"--resume: the run in '{run_dir}' trains '{old_cfg['model']}', not '{cfg.model}'")
    init_src = resolve_init_source(cfg.init_from) if cfg.init_from and ckpt_path is None else None
    dataset = training_pairs(cfg.data, train=True, progress=progress and ctx.is_main)
    val_ds = None
    if cfg.val_path:
        val_cfg = copy.deepcopy(cfg.data)
        val_cfg.path, val_cfg.ir_dir, val_cfg.vis_dir = cfg.val_path, "", ""
        try:
            val_ds = PairedDataset(cfg.val_path, val_cfg, train=False, max_pairs=cfg.val_max_pairs or None)
        except DatasetError as exc:
            raise DatasetError(f"validation data: {exc}") from exc
    _say(ctx, f"data: {dataset.summary()}")

    if model is None:
        model = build_model(cfg, init_src)
    elif init_src is not None:
        load_init_weights(model, init_src, cfg.model)
    if init_src is not None:
        _say(ctx, f"initialised from {init_src.describe()}")
    _check_model(model, cfg)
    model.to(device)

    bs = int(cfg.data.batch_size)
    if bs < 1:
        raise ValueError(f"--batch-size must be at least 1, got {bs}")
    sampler = PairSampler(dataset, bs, num_replicas=ctx.world_size, rank=ctx.rank, seed=cfg.seed)
    plans = plan_stages(cfg.stages, sampler.steps_per_epoch)
    total = plans[-1].end
    _check_stages(model, plans)
    amp_dtype, scaler = _amp_setup(cfg, device)

    # ---- resume state, checked against the configuration
    step, ckpt = 0, None
    init_desc = init_src.describe() if init_src is not None else ""
    if ckpt_path is not None:
        ckpt = _read_checkpoint(ckpt_path)
        step = int(ckpt["state"]["step"])
        init_desc = str(ckpt["state"].get("init_from", ""))
        if step > total:
            raise ValueError(f"--resume: the newest checkpoint ({ckpt_path}) is at step {step}, beyond the {total} "
                             f"steps the configuration now asks for; give --steps {step} or more")
        check_state_fits(model, ckpt["model"], f"--resume: checkpoint '{ckpt_path / 'model.safetensors'}'", cfg.model)
        model.load_state_dict(ckpt["model"])
        _check_resume_optimizer(model, ckpt, ckpt_path, plans, step)
        if scaler is not None and "scaler" in ckpt["state"]:
            scaler.load_state_dict(ckpt["state"]["scaler"])
        _say(ctx, f"resuming from {ckpt_path} (step {step} of {total})")
    cfg.imports = plugin_modules(cfg)

    # ---- from here on the run folder is written
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        new_cfg = config_to_dict(cfg)
        if old_cfg is not None and old_cfg != new_cfg:
            changed = sorted(k for k in set(old_cfg) | set(new_cfg) if old_cfg.get(k) != new_cfg.get(k))
            _say(ctx, f"warning: the configuration differs from the one the run started with ({', '.join(changed)})")
        cfg_file.write_text(json.dumps(new_cfg, indent=2) + "\n")
        (run_dir / "run.json").write_text(json.dumps({
            "model": cfg.model, "preset": cfg.preset, "python": platform.python_version(), "torch": torch.__version__,
            "device": str(device), "world_size": ctx.world_size, "threads": torch.get_num_threads(),
            "pairs": len(dataset), "steps_per_epoch": sampler.steps_per_epoch, "total_steps": total,
            "stages": [{"name": p.stage.name, "start": p.start, "end": p.end} for p in plans],
            "labels": dataset.labels.describe(), "init_from": init_desc,
        }, indent=2) + "\n")
    log = _JsonlLog(run_dir / "log.jsonl", ctx.is_main, step if ckpt is not None else None)

    loader = torch.utils.data.DataLoader(
        dataset, batch_size=bs, sampler=sampler, collate_fn=collate_pairs, drop_last=True,
        num_workers=int(cfg.data.workers), pin_memory=device.type == "cuda",
        persistent_workers=int(cfg.data.workers) > 0, generator=torch.Generator().manual_seed(cfg.seed),
    )
    stream = _batches(loader, sampler, step)

    bar = None
    if progress and ctx.is_main:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=step, unit="step", dynamic_ncols=True, desc=cfg.model)

    history: list[dict] = []
    last_val: dict[str, float] = {}
    skipped_metrics: set[str] = set()
    if val_ds is not None and cfg.val_every > 0 and step == 0 and ctx.is_main:  # the untrained baseline
        first = plans[0].stage
        crit0 = build_loss(first.loss if first.loss is not None else cfg.loss).to(device)
        if callable(getattr(model, "set_stage", None)):
            model.set_stage(first.name)
        base = validate(model, val_ds, crit0, device, cfg.val_metrics, amp_dtype, skipped_metrics)
        log.write({"kind": "val", "step": 0, **{k: round(v, 6) for k, v in base.items()}})
    ddp_model: nn.Module = model
    try:
        for plan in plans:
            if plan.end <= step:
                continue
            stage = plan.stage
            params = apply_stage(model, stage)
            if ctx.distributed:
                from torch.nn.parallel import DistributedDataParallel as DDP

                ddp_model = DDP(
                    model, device_ids=[device.index] if device.type == "cuda" else None,
                    find_unused_parameters=cfg.find_unused_parameters,
                )
            else:
                ddp_model = model
            optimizer = build_optimizer(stage.optimizer, params)
            if ckpt is not None and step > plan.start and ckpt["optimizer"] is not None:
                if int(ckpt["state"].get("stage_index", -1)) != plan.index:
                    raise ValueError(f"checkpoint {ckpt_path} belongs to another stage than step {step}")
                optimizer.load_state_dict(ckpt["optimizer"])
            if ckpt is not None and ckpt.get("rng") is not None:
                set_rng_state_from_flat(*ckpt["rng"])
            ckpt = None  # consumed
            criterion = build_loss(stage.loss if stage.loss is not None else cfg.loss).to(device)
            _say(ctx, f"stage '{stage.name}': steps {plan.start}-{plan.end} ({len(params)} trainable tensors, "
                      f"{sum(p.numel() for p in params):,} parameters)")
            acc: dict[str, float] = defaultdict(float)
            n_acc, t_acc = 0, 0.0
            while step < plan.end:
                t0 = time.perf_counter()
                batch = _to_device(next(stream), device)
                torch.manual_seed(step_seed(cfg.seed, step, ctx.rank))
                lr = lr_at(stage.optimizer, stage.schedule, step - plan.start, plan)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                optimizer.zero_grad(set_to_none=True)
                with _autocast(device, amp_dtype):
                    fused, maps = _split(ddp_model(batch["ir"], batch["vis"], return_maps=True))
                loss, terms = criterion(fused.float(), {k: v.float() for k, v in maps.items()}, batch)
                if not torch.isfinite(loss):
                    shown = {k: round(_scalar(v), 5) for k, v in terms.items()}
                    raise FloatingPointError(
                        f"loss is {float(loss.detach())} at step {step} (stage '{stage.name}', terms {shown}); "
                        "lower the learning rate or check the data"
                    )
                if scaler is not None:
                    scaler.scale(loss).backward()
                    if stage.optimizer.grad_clip > 0:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(params, stage.optimizer.grad_clip)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    if stage.optimizer.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(params, stage.optimizer.grad_clip)
                    optimizer.step()
                step += 1
                for k, v in terms.items():
                    acc[k] += _scalar(v)
                n_acc += 1
                t_acc += time.perf_counter() - t0
                if bar is not None:
                    bar.update(1)

                if step % max(cfg.log_every, 1) == 0 or step == plan.end:
                    means = all_reduce_mean({k: v / n_acc for k, v in acc.items()}, ctx)
                    row = {"kind": "train", "step": step, "stage": stage.name,
                           "epoch": round(step / sampler.steps_per_epoch, 3), "lr": lr,
                           **{k: round(v, 6) for k, v in means.items()},
                           "sec_per_step": round(t_acc / n_acc, 4), "time": round(time.time() - t_start, 1)}
                    log.write(row)
                    if ctx.is_main:
                        history.append(row)
                    if bar is not None:
                        bar.set_postfix({k: f"{v:.4f}" for k, v in means.items()} | {"stage": stage.name},
                                        refresh=False)
                    acc, n_acc, t_acc = defaultdict(float), 0, 0.0

                if val_ds is not None and cfg.val_every > 0 and step % cfg.val_every == 0 and ctx.is_main:
                    last_val = validate(model, val_ds, criterion, device, cfg.val_metrics, amp_dtype, skipped_metrics)
                    log.write({"kind": "val", "step": step, **{k: round(v, 6) for k, v in last_val.items()}})

                at_end = step == plan.end
                if ctx.is_main and (at_end or (cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0)):
                    save_checkpoint(
                        run_dir, step, model, optimizer,
                        {"stage_index": plan.index, "stage": stage.name, "total_steps": total,
                         "config_model": cfg.model, "init_from": init_desc},
                        scaler=scaler, keep=cfg.keep_checkpoints, pinned=at_end,
                    )
                if interrupt_at is not None and step >= interrupt_at:
                    return TrainResult(run_dir, None, None, step, history, last_val, model)
    finally:
        if bar is not None:
            bar.close()

    # ---- the end: validation, export
    weights = card_path = None
    if ctx.is_main:
        if val_ds is not None and not (cfg.val_every > 0 and step % cfg.val_every == 0):
            criterion = build_loss(plans[-1].stage.loss or cfg.loss).to(device)
            last_val = validate(model, val_ds, criterion, device, cfg.val_metrics, amp_dtype, skipped_metrics)
            log.write({"kind": "val", "step": step, **{k: round(v, 6) for k, v in last_val.items()}})
        if skipped_metrics:
            _say(ctx, "validation skipped metrics that are unavailable or failed: "
                 f"{', '.join(sorted(skipped_metrics))}")
        from ..models import save_weights

        model.eval()
        weights = save_weights(model, run_dir / f"{cfg.model}.safetensors",
                               metadata={"model": cfg.model, "steps": str(step), "preset": cfg.preset,
                                         **({"init_from": init_desc} if init_desc else {})})
        card = _card(cfg, weights, step, model, last_val, time.time() - t_start, init_desc)
        card_path = run_dir / f"{cfg.model}.json"
        card_path.write_text(json.dumps(card.to_dict(), indent=2) + "\n")
        _say(ctx, f"done: {step} steps in {(time.time() - t_start) / 60:.1f} min; weights {weights}")
    for p in model.parameters():  # hand back an ordinary module
        p.requires_grad_(True)
    model.eval()
    return TrainResult(run_dir, weights, card_path, step, history, last_val, model)


def load_run_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The configuration a run was started with (``RUN_DIR/config.json``)."""
    p = Path(run_dir) / "config.json"
    if not p.is_file():
        raise FileNotFoundError(f"'{p}': no run configuration (was the run started with ivfuse train?)")
    try:
        return config_from_dict(_read_json(p, "--resume"))
    except ValueError as exc:
        msg = _one_line(exc)
        raise type(exc)(msg if str(p) in msg else f"--resume: '{p}': {msg}") from exc
