"""The :class:`Trainer` behind :func:`ivfuse.train.loop.train`: setup, run files, stages, steps, export.

A run goes :meth:`Trainer.setup` (every check, data, model, stage plan, resume state; nothing
written), :meth:`Trainer.write_run_files`, then :meth:`Trainer.run` (the stages step by step, with
logging, validation and checkpoints, and the final weights and card). See :mod:`ivfuse.train.loop`
for the run folder and the determinism contract.
"""

from __future__ import annotations

import copy
import platform
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data import DatasetError, PairedDataset, PairSampler, collate_pairs, training_pairs
from ..losses import build_loss
from .checkpoint import latest_checkpoint, save_checkpoint, set_rng_state_from_flat
from .checks import (
    RunExistsError,
    check_model,
    check_resume_optimizer,
    check_stages,
    read_checkpoint,
    read_json,
)
from .config import TrainConfig
from .distributed import DistContext, all_reduce_mean
from .init_weights import InitSource, check_state_fits, load_init_weights, resolve_init_source
from .recipes import ensure_registered, plugin_modules
from .run_files import JsonlLog, export_weights, write_run_files
from .stages import StagePlan, apply_stage, build_optimizer, lr_at, plan_stages
from .step import amp_setup, batches, scalar, step_seed, to_device, train_step
from .validation import validate

__all__ = ["Trainer", "TrainResult", "build_model"]


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
        fresh = load_init_weights(model, init, cfg.model, partial=cfg.init_partial)
        if fresh:
            print(f"initial weights: {len(fresh)} tensors not in {init.spec} keep their fresh initialisation: "
                  + ", ".join(fresh[:8]) + (", ..." if len(fresh) > 8 else ""))
    return model


@dataclass
class _StageRun:
    """One stage in progress: its plan, trainable parameters, optimizer, criterion, log accumulators."""

    plan: StagePlan
    params: list[nn.Parameter]
    net: nn.Module  # the model, DDP-wrapped when distributed
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    acc: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    n_acc: int = 0
    t_acc: float = 0.0
    lr: float = 0.0


class Trainer:
    """One training run of ``cfg`` into ``run_dir`` (see :func:`ivfuse.train.loop.train` for the arguments)."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, ctx: DistContext, resume: bool = False,
                 progress: bool = True, model: nn.Module | None = None) -> None:
        self.t_start = time.time()
        self.cfg = copy.deepcopy(cfg)
        self.run_dir, self.ctx, self.device = Path(run_dir), ctx, ctx.device
        self.resume, self.progress, self.model = resume, progress, model
        self.step, self.ckpt, self.ckpt_path, self.old_cfg = 0, None, None, None
        self.init_src: InitSource | None = None
        self.init_desc = ""
        self.val_ds: PairedDataset | None = None
        self.history: list[dict] = []
        self.last_val: dict[str, float] = {}
        self.skipped_metrics: set[str] = set()
        self.log: JsonlLog | None = None
        self.bar = None

    def say(self, msg: str) -> None:
        """Print a progress message on stderr (rank 0)."""
        if self.ctx.is_main:
            print(msg, file=sys.stderr, flush=True)

    # ---- setup: everything is checked before anything is written, so a run that cannot start
    # (or resume) leaves the run folder exactly as it was.

    def setup(self) -> None:
        """Check the run folder, load the data, build the model, plan the stages, read the resume state."""
        if self.device.type == "cpu" and self.cfg.threads > 0:
            torch.set_num_threads(int(self.cfg.threads))
        self._check_run_folder()
        self._load_data()
        self._prepare_model()
        self._plan()
        self._restore()
        self.cfg.imports = plugin_modules(self.cfg)

    def _check_run_folder(self) -> None:
        from ..models import get_model_entry

        cfg, run_dir = self.cfg, self.run_dir
        ensure_registered(cfg, check_model=self.model is None)
        if run_dir.exists() and not run_dir.is_dir():
            raise ValueError(f"--out '{run_dir}': a file is there, not a run folder")
        self.ckpt_path = latest_checkpoint(run_dir) if self.resume else None
        if not self.resume and ((run_dir / "checkpoints").is_dir() or (run_dir / "log.jsonl").is_file()):
            raise RunExistsError(f"'{run_dir}' already holds a run; pass --resume to continue it or choose another "
                                 "--out")
        cfg_file = run_dir / "config.json"
        self.old_cfg = read_json(cfg_file, "--resume") if self.resume and cfg_file.is_file() else None
        if self.model is None and not get_model_entry(cfg.model).trainable:
            raise ValueError(f"--model {cfg.model}: the method is training-free; pick a trainable model "
                             "(see `ivfuse models`)")
        if not cfg.model:
            cfg.model = type(self.model).__name__
        old = self.old_cfg
        if old is not None and old.get("model") and old["model"] != cfg.model:
            raise ValueError(f"--resume: the run in '{run_dir}' trains '{old['model']}', not '{cfg.model}'")
        if cfg.init_from and self.ckpt_path is None:
            self.init_src = resolve_init_source(cfg.init_from)

    def _load_data(self) -> None:
        cfg = self.cfg
        self.dataset = training_pairs(cfg.data, train=True, progress=self.progress and self.ctx.is_main)
        if cfg.val_path:
            val_cfg = copy.deepcopy(cfg.data)
            val_cfg.path, val_cfg.ir_dir, val_cfg.vis_dir = cfg.val_path, "", ""
            try:
                self.val_ds = PairedDataset(cfg.val_path, val_cfg, train=False, max_pairs=cfg.val_max_pairs or None)
            except DatasetError as exc:
                raise DatasetError(f"validation data: {exc}") from exc
        self.say(f"data: {self.dataset.summary()}")

    def _prepare_model(self) -> None:
        if self.model is None:
            self.model = build_model(self.cfg, self.init_src)
        elif self.init_src is not None:
            load_init_weights(self.model, self.init_src, self.cfg.model)
        if self.init_src is not None:
            self.say(f"initialised from {self.init_src.describe()}")
            self.init_desc = self.init_src.describe()
        check_model(self.model, self.cfg)
        self.model.to(self.device)
        if self.device.type == "cpu" and getattr(self.model, "train_channels_last", False):
            self.model.to(memory_format=torch.channels_last)

    def _plan(self) -> None:
        bs = int(self.cfg.data.batch_size)
        if bs < 1:
            raise ValueError(f"--batch-size must be at least 1, got {bs}")
        ctx = self.ctx
        self.sampler = PairSampler(self.dataset, bs, num_replicas=ctx.world_size, rank=ctx.rank, seed=self.cfg.seed)
        self.plans = plan_stages(self.cfg.stages, self.sampler.steps_per_epoch)
        self.total = self.plans[-1].end
        check_stages(self.model, self.plans)
        self.amp_dtype, self.scaler = amp_setup(self.cfg, self.device)

    def _restore(self) -> None:
        """Read the newest checkpoint (with ``resume``) and check it against the configuration."""
        path, model = self.ckpt_path, self.model
        if path is None:
            return
        ckpt = self.ckpt = read_checkpoint(path)
        step = self.step = int(ckpt["state"]["step"])
        self.init_desc = str(ckpt["state"].get("init_from", ""))
        if step > self.total:
            raise ValueError(f"--resume: the newest checkpoint ({path}) is at step {step}, beyond the {self.total} "
                             f"steps the configuration now asks for; give --steps {step} or more")
        check_state_fits(model, ckpt["model"], f"--resume: checkpoint '{path / 'model.safetensors'}'", self.cfg.model)
        model.load_state_dict(ckpt["model"])
        check_resume_optimizer(model, ckpt, path, self.plans, step)
        if self.scaler is not None and "scaler" in ckpt["state"]:
            self.scaler.load_state_dict(ckpt["state"]["scaler"])
        self.say(f"resuming from {path} (step {step} of {self.total})")

    # ---- run files

    def write_run_files(self) -> None:
        """config.json and run.json (rank 0), and open the log (trimmed to the resumed step)."""
        cfg, ctx, plans = self.cfg, self.ctx, self.plans
        if ctx.is_main:
            write_run_files(self.run_dir, cfg, self.old_cfg, {
                "model": cfg.model, "preset": cfg.preset, "python": platform.python_version(),
                "torch": torch.__version__, "device": str(self.device), "world_size": ctx.world_size,
                "threads": torch.get_num_threads(), "pairs": len(self.dataset),
                "steps_per_epoch": self.sampler.steps_per_epoch, "total_steps": self.total,
                "stages": [{"name": p.stage.name, "start": p.start, "end": p.end} for p in plans],
                "labels": self.dataset.labels.describe(), "init_from": self.init_desc,
            }, self.say)
        self.log = JsonlLog(self.run_dir / "log.jsonl", ctx.is_main, self.step if self.ckpt is not None else None)

    # ---- the stages

    def _stream(self):
        cfg = self.cfg
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=int(cfg.data.batch_size), sampler=self.sampler, collate_fn=collate_pairs,
            drop_last=True, num_workers=int(cfg.data.workers), pin_memory=self.device.type == "cuda",
            persistent_workers=int(cfg.data.workers) > 0, generator=torch.Generator().manual_seed(cfg.seed),
        )
        return batches(loader, self.sampler, self.step)

    def run(self, interrupt_at: int | None = None) -> TrainResult:
        """Train every stage from the current step, then validate and export (rank 0).

        Args:
            interrupt_at: stop right after this global step, without the final export.
        """
        stream = self._stream()
        if self.progress and self.ctx.is_main:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.step, unit="step", dynamic_ncols=True, desc=self.cfg.model)
        try:
            self._validate_baseline()
            for plan in self.plans:
                if plan.end > self.step and self._train_stage(self._start_stage(plan), stream, interrupt_at):
                    return TrainResult(self.run_dir, None, None, self.step, self.history, self.last_val, self.model)
        finally:
            if self.bar is not None:
                self.bar.close()
        return self._finish()

    def _criterion(self, stage) -> nn.Module:
        return build_loss(stage.loss if stage.loss is not None else self.cfg.loss).to(self.device)

    def _start_stage(self, plan: StagePlan) -> _StageRun:
        """Freeze and unfreeze for the stage, wrap in DDP, build the optimizer (restored when resuming inside it)."""
        model, ctx, ckpt, stage = self.model, self.ctx, self.ckpt, plan.stage
        params = apply_stage(model, stage)
        net: nn.Module = model
        if ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            net = DDP(model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                      find_unused_parameters=self.cfg.find_unused_parameters)
        optimizer = build_optimizer(stage.optimizer, params)
        if ckpt is not None and self.step > plan.start and ckpt["optimizer"] is not None:
            if int(ckpt["state"].get("stage_index", -1)) != plan.index:
                raise ValueError(f"checkpoint {self.ckpt_path} belongs to another stage than step {self.step}")
            optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt is not None and ckpt.get("rng") is not None:
            set_rng_state_from_flat(*ckpt["rng"])
        self.ckpt = None  # consumed
        criterion = self._criterion(stage)
        self.say(f"stage '{stage.name}': steps {plan.start}-{plan.end} ({len(params)} trainable tensors, "
                 f"{sum(p.numel() for p in params):,} parameters)")
        return _StageRun(plan, params, net, optimizer, criterion)

    def _train_stage(self, st: _StageRun, stream, interrupt_at: int | None) -> bool:
        """Steps until the stage ends; True when stopped at ``interrupt_at``."""
        while self.step < st.plan.end:
            self._step(st, stream)
            self._log_step(st)
            if self._due(self.cfg.val_every) and self.val_ds is not None and self.ctx.is_main:
                self.last_val = self._validate(st.criterion)
            self._checkpoint(st)
            if interrupt_at is not None and self.step >= interrupt_at:
                return True
        return False

    def _step(self, st: _StageRun, stream) -> None:
        """One optimizer step at the current global step, seeded from (seed, step, rank); accumulates its terms."""
        t0 = time.perf_counter()
        stage, step = st.plan.stage, self.step
        batch = to_device(next(stream), self.device)
        torch.manual_seed(step_seed(self.cfg.seed, step, self.ctx.rank))
        st.lr = lr_at(stage.optimizer, stage.schedule, step - st.plan.start, st.plan)
        for g in st.optimizer.param_groups:
            g["lr"] = st.lr
        terms = train_step(st.net, batch, st.criterion, st.optimizer, st.params, stage.optimizer.grad_clip,
                           self.scaler, self.amp_dtype, step=step, stage=stage.name)
        self.step += 1
        for k, v in terms.items():
            st.acc[k] += scalar(v)
        st.n_acc += 1
        st.t_acc += time.perf_counter() - t0
        if self.bar is not None:
            self.bar.update(1)

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    # ---- log, validate, checkpoint

    def _log_step(self, st: _StageRun) -> None:
        """A "train" row of the means since the last one, every ``log_every`` steps and at the stage's end."""
        step, stage = self.step, st.plan.stage
        if not (step % max(self.cfg.log_every, 1) == 0 or step == st.plan.end):
            return
        means = all_reduce_mean({k: v / st.n_acc for k, v in st.acc.items()}, self.ctx)
        row = {"kind": "train", "step": step, "stage": stage.name,
               "epoch": round(step / self.sampler.steps_per_epoch, 3), "lr": st.lr,
               **{k: round(v, 6) for k, v in means.items()},
               "sec_per_step": round(st.t_acc / st.n_acc, 4), "time": round(time.time() - self.t_start, 1)}
        self.log.write(row)
        if self.ctx.is_main:
            self.history.append(row)
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in means.items()} | {"stage": stage.name}, refresh=False)
        st.acc, st.n_acc, st.t_acc = defaultdict(float), 0, 0.0

    def _validate(self, criterion: nn.Module) -> dict[str, float]:
        """Validate the model at the current step and write a "val" log row (rank 0)."""
        res = validate(self.model, self.val_ds, criterion, self.device, self.cfg.val_metrics, self.amp_dtype,
                       self.skipped_metrics)
        self.log.write({"kind": "val", "step": self.step, **{k: round(v, 6) for k, v in res.items()}})
        return res

    def _validate_baseline(self) -> None:
        """The untrained model's validation row at step 0 of a fresh run."""
        if self.val_ds is None or self.cfg.val_every <= 0 or self.step != 0 or not self.ctx.is_main:
            return
        first = self.plans[0].stage
        criterion = self._criterion(first)
        if callable(getattr(self.model, "set_stage", None)):
            self.model.set_stage(first.name)
        self._validate(criterion)

    def _checkpoint(self, st: _StageRun) -> None:
        """Save a checkpoint every ``checkpoint_every`` steps and at the stage's end (pinned) (rank 0)."""
        at_end = self.step == st.plan.end
        if not (self.ctx.is_main and (at_end or self._due(self.cfg.checkpoint_every))):
            return
        cfg, plan = self.cfg, st.plan
        save_checkpoint(
            self.run_dir, self.step, self.model, st.optimizer,
            {"stage_index": plan.index, "stage": plan.stage.name, "total_steps": self.total,
             "config_model": cfg.model, "init_from": self.init_desc},
            scaler=self.scaler, keep=cfg.keep_checkpoints, pinned=at_end,
        )

    # ---- the end

    def _finish(self) -> TrainResult:
        """Final validation (unless it just ran), weights and card (rank 0); the model handed back trainable."""
        weights = card_path = None
        if self.ctx.is_main:
            if self.val_ds is not None and not self._due(self.cfg.val_every):
                self.last_val = self._validate(self._criterion(self.plans[-1].stage))
            if self.skipped_metrics:
                self.say("validation skipped metrics that are unavailable or failed: "
                         f"{', '.join(sorted(self.skipped_metrics))}")
            weights, card_path = export_weights(self.run_dir, self.cfg, self.model, self.step, self.last_val,
                                                time.time() - self.t_start, self.init_desc)
            self.say(f"done: {self.step} steps in {(time.time() - self.t_start) / 60:.1f} min; weights {weights}")
        for p in self.model.parameters():  # hand back an ordinary module
            p.requires_grad_(True)
        self.model.eval()
        return TrainResult(self.run_dir, weights, card_path, self.step, self.history, self.last_val, self.model)
