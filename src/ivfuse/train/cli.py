"""``ivfuse train``: parse, resolve the configuration, check the data, call :func:`ivfuse.train.loop.train`.

The configuration is resolved in this order, each step overriding the previous one:

1. the model's recipe and ``--preset`` (:func:`ivfuse.train.recipes.make_config`), or with
   ``--resume`` the run's saved ``config.json``;
2. ``--config FILE`` (TOML);
3. the named options (``--data``, ``--steps``, ``--batch-size``, ...);
4. ``--set KEY=VALUE`` (repeatable), e.g. ``--set stages.1.optimizer.lr=1e-5``.

Under ``torchrun`` every process runs this same command (``torchrun --nproc_per_node=4 -m
ivfuse.cli train ...``).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

__all__ = ["add_parser", "resolve_config", "scale_to_steps"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model on a folder of infrared/visible pairs",
        description="Train a registered model with unsupervised fusion losses (and boxes, masks or pseudo-labels "
        "where the model's recipe uses them). See docs/training.md.",
    )
    p.add_argument("--model", help="registered trainable model (see `ivfuse models`)")
    p.add_argument("--data", action="append", metavar="DIR",
                   help="dataset folder with ir/vi (or Inf/Vis, ...) subfolders; repeat to train on several")
    p.add_argument("--ir", help="infrared folder (with --vis, instead of --data)")
    p.add_argument("--vis", help="visible folder (with --ir, instead of --data)")
    p.add_argument("--preset", default="cpu", help="recipe preset: cpu (default, two CPU cores) or paper")
    p.add_argument("--config", help="TOML file overriding the preset")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log, final weights)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    p.add_argument("--init-from", metavar="MODEL|FILE",
                   help="start from these weights and fine-tune: a model whose weights ship (e.g. fusionnet_cpu) "
                        "or a .safetensors file; not with --resume")
    p.add_argument("--steps", type=int, help="total optimizer steps (stage lengths and schedules scaled to fit)")
    p.add_argument("--batch-size", type=int, help="pairs per step per process")
    p.add_argument("--crop", type=int, help="training crop side in pixels")
    p.add_argument("--lr", type=float, help="learning rate of every stage")
    p.add_argument("--seed", type=int, help="random seed (model init, data order, crops)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), help="mixed precision on CUDA")
    p.add_argument("--threads", type=int, help="torch CPU threads (0: torch default)")
    p.add_argument("--workers", type=int, help="DataLoader worker processes")
    p.add_argument("--boxes", help="box annotations: folder (YOLO/VOC) or COCO json; 'none' to ignore")
    p.add_argument("--masks", help="foreground mask folder; 'none' to ignore")
    p.add_argument("--pseudo", choices=("auto", "always", "never"), help="pseudo-labels for pairs without labels")
    p.add_argument("--val", help="validation dataset folder")
    p.add_argument("--val-every", type=int, help="steps between validations")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--log-every", type=int, help="steps between log rows")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any setting, e.g. data.rot90=true or stages.0.schedule.name=cosine")
    p.add_argument("--print-config", action="store_true", help="print the resolved configuration and exit")
    p.add_argument("--check", action="store_true", help="check the data and model, print the plan, and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def scale_to_steps(cfg, total_steps: int):
    """Make the run ``total_steps`` long: every stage in steps, lengths in proportion to the old ones.

    Schedule lengths (step size, milestones, warm-up) are scaled by the same factor per stage,
    so "halve every 20 of 100 epochs" becomes "halve every 20 % of the stage".
    """
    if total_steps < len(cfg.stages):
        raise ValueError(f"--steps {total_steps} is fewer than the {len(cfg.stages)} stages")
    cfg = copy.deepcopy(cfg)
    old = [max(1, int(s.length)) for s in cfg.stages]
    weights = [o / sum(old) for o in old]
    new = [max(1, int(w * total_steps)) for w in weights]
    while sum(new) < total_steps:  # largest remainder first
        i = max(range(len(new)), key=lambda j: weights[j] * total_steps - new[j])
        new[i] += 1
    while sum(new) > total_steps:  # the 1-step floors overshot: take from the longest
        new[max(range(len(new)), key=lambda j: new[j])] -= 1
    for st, o, n in zip(cfg.stages, old, new):
        f = n / o
        st.length, st.unit = n, "steps"
        sc = st.schedule
        if sc.step_size:
            sc.step_size = max(1, round(sc.step_size * f))
        sc.milestones = [max(1, round(int(m) * f)) for m in sc.milestones]
        sc.warmup = round(sc.warmup * f)
    return cfg


def resolve_config(args):
    """The :class:`~ivfuse.train.config.TrainConfig` the options describe (see the module docstring)."""
    from .config import apply_dotted, apply_overrides, load_toml
    from .loop import load_run_config
    from ..models import list_models
    from .recipes import get_recipe, make_config

    out = Path(args.out)
    init_from = getattr(args, "init_from", None)
    if args.resume and init_from:
        raise ValueError("--init-from starts a new run from weights; it cannot be combined with --resume, which "
                         "continues the run in --out from its own checkpoint")
    if args.resume and (out / "config.json").is_file():
        cfg = load_run_config(out)
        if args.model and args.model != cfg.model:
            raise ValueError(f"--resume: the run in '{out}' trains '{cfg.model}', not '{args.model}'")
    else:
        if not args.model:
            if args.resume:
                raise ValueError(f"--resume: '{out}' holds no run (no config.json); give --model NAME to start one")
            raise ValueError("give --model NAME (see `ivfuse models`)")
        if args.model not in list_models():
            hint = [n for n in list_models() if args.model.lower() in n]
            raise ValueError(f"--model {args.model}: unknown model"
                             + (f" (did you mean {', '.join(hint)}?)" if hint else "")
                             + f"; registered: {', '.join(list_models())}")
        presets = get_recipe(args.model).presets
        if args.preset not in presets:
            raise ValueError(
                f"--preset {args.preset}: unknown for model '{args.model}'; choose one of {', '.join(presets)}"
            )
        cfg = make_config(args.model, args.preset)
    if init_from:
        cfg.init_from = init_from
    if args.config:
        if not Path(args.config).is_file():
            raise FileNotFoundError(f"--config '{args.config}': file not found")
        try:
            cfg = apply_overrides(cfg, load_toml(args.config))
        except ValueError as exc:
            msg = " ".join(str(exc).split())
            raise type(exc)(msg if args.config in msg else f"--config '{args.config}': {msg}") from exc
    if args.data:
        cfg.data.path, cfg.data.ir_dir, cfg.data.vis_dir = args.data[0], "", ""
        cfg.data.more = list(args.data[1:])
    if args.ir or args.vis:
        if not (args.ir and args.vis):
            raise ValueError("--ir and --vis go together")
        cfg.data.path, cfg.data.ir_dir, cfg.data.vis_dir, cfg.data.more = "", args.ir, args.vis, []
    if args.steps is not None:
        cfg = scale_to_steps(cfg, args.steps)
    for opt, key in (("batch_size", "batch_size"), ("crop", "crop"), ("workers", "workers")):
        if getattr(args, opt) is not None:
            setattr(cfg.data, key, getattr(args, opt))
    if args.lr is not None:
        for st in cfg.stages:
            st.optimizer.lr = args.lr
    for opt in ("seed", "device", "amp", "threads"):
        if getattr(args, opt) is not None:
            setattr(cfg, opt, getattr(args, opt))
    if args.boxes is not None:
        cfg.data.boxes = "" if args.boxes == "none" else args.boxes
    if args.masks is not None:
        cfg.data.masks = "" if args.masks == "none" else args.masks
    if args.pseudo is not None:
        cfg.data.pseudo.mode = args.pseudo
    if args.val is not None:
        cfg.val_path = args.val
    for opt, key in (("val_every", "val_every"), ("checkpoint_every", "checkpoint_every"), ("log_every", "log_every")):
        if getattr(args, opt) is not None:
            setattr(cfg, key, getattr(args, opt))
    if args.set:
        try:
            cfg = apply_dotted(cfg, args.set)
        except ValueError as exc:
            raise type(exc)(f"--set: {' '.join(str(exc).split())}") from exc
    # absolute paths, so that `--resume` works from any working directory
    for obj, key in ((cfg.data, "path"), (cfg.data, "ir_dir"), (cfg.data, "vis_dir"), (cfg, "val_path")):
        if getattr(obj, key):
            setattr(obj, key, str(Path(getattr(obj, key)).expanduser().resolve()))
    cfg.data.more = [str(Path(m).expanduser().resolve()) for m in cfg.data.more]
    for key in ("boxes", "masks"):
        val = getattr(cfg.data, key)
        if val and val != "auto":
            if cfg.data.more:
                raise ValueError(f"--{key} {val}: with several --data folders each one's labels are found in it "
                                 f"(leave --{key} at auto, or give none)")
            setattr(cfg.data, key, str(Path(val).expanduser().resolve()))
    if cfg.init_from and Path(cfg.init_from).expanduser().exists():  # a file (a model name stays a name)
        cfg.init_from = str(Path(cfg.init_from).expanduser().resolve())
    if not (cfg.data.path or (cfg.data.ir_dir and cfg.data.vis_dir)):
        raise ValueError("no training data: give --data DIR (or --ir DIR --vis DIR, or data.path in --config)")
    return cfg


def _check(cfg) -> int:
    from ..data import PairSampler, training_pairs
    from ..models import count_parameters, get_model_entry
    from .checks import check_model
    from .loop import build_model
    from .recipes import ensure_registered
    from .stages import plan_stages, select_parameters

    ensure_registered(cfg)
    if not get_model_entry(cfg.model).trainable:
        raise ValueError(
            f"--model {cfg.model}: the method is training-free; pick a trainable model (see `ivfuse models`)"
        )
    ds = training_pairs(cfg.data, train=True, progress=True)
    print(f"data: {ds.summary()}")
    model = build_model(cfg, cfg.init_from or None)
    if cfg.init_from:
        print(f"initial weights: {cfg.init_from} (they fit)")
    check_model(model, cfg)
    sampler = PairSampler(ds, cfg.data.batch_size, seed=cfg.seed)
    print(f"model: {cfg.model} ({count_parameters(model):,} parameters); {sampler.steps_per_epoch} steps per epoch")
    for plan in plan_stages(cfg.stages, sampler.steps_per_epoch):
        if callable(getattr(model, "set_stage", None)):
            model.set_stage(plan.stage.name)
        n = len(select_parameters(model, plan.stage.train, plan.stage.freeze))
        print(f"stage '{plan.stage.name}': steps {plan.start}-{plan.end}, {n} trainable tensors, "
              f"{plan.stage.optimizer.name} lr {plan.stage.optimizer.lr:g}, schedule {plan.stage.schedule.name}")
    return 0


def _cmd_train(args) -> int:
    from .config import config_to_dict

    cfg = resolve_config(args)
    if args.print_config:
        print(json.dumps(config_to_dict(cfg), indent=2))
        return 0
    if args.check:
        return _check(cfg)
    from .loop import train

    try:
        res = train(cfg, args.out, resume=args.resume, progress=not args.quiet)
    except FloatingPointError as exc:
        print(f"ivfuse: error: {exc}", file=sys.stderr)
        return 1
    if res.weights is not None:
        print(f"trained '{cfg.model}' for {res.steps} steps: {res.weights} (card {res.card})")
    return 0
