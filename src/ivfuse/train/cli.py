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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["OPTIONS", "Option", "add_parser", "apply_options", "resolve_config", "scale_to_steps"]


@dataclass(frozen=True)
class Option:
    """One command-line option: its flags, the configuration field it sets, its type and help.

    Attributes:
        flags: the option strings, space-separated ("-q --quiet").
        path: the dotted configuration field the value goes to ("data.crop"; "stages.*.optimizer.lr"
            sets it in every stage); empty when :func:`resolve_config` reads the option itself.
        type: converts the command-line string (None: a flag without a value).
        help: the help text.
        extra: further :meth:`argparse.ArgumentParser.add_argument` keywords (choices, metavar, ...).
    """

    flags: str
    path: str
    type: Callable[[str], Any] | None
    help: str
    extra: dict = field(default_factory=dict)


def _none_is_empty(value: str) -> str:
    """A label source, with 'none' meaning no labels (the empty string)."""
    return "" if value == "none" else value


_FLAG = {"action": "store_true"}

#: The options of ``ivfuse train`` in help order; those with a ``path`` are applied by :func:`apply_options`.
OPTIONS: tuple[Option, ...] = (
    Option("--model", "", str, "registered trainable model (see `ivfuse models`)"),
    Option("--data", "", str, "dataset folder with ir/vi (or Inf/Vis, ...) subfolders; repeat to train on several",
           {"action": "append", "metavar": "DIR"}),
    Option("--ir", "", str, "infrared folder (with --vis, instead of --data)"),
    Option("--vis", "", str, "visible folder (with --ir, instead of --data)"),
    Option("--preset", "", str, "recipe preset: cpu (default, two CPU cores) or paper", {"default": "cpu"}),
    Option("--config", "", str, "TOML file overriding the preset"),
    Option("--out", "", str, "run folder (checkpoints, log, final weights)", {"required": True}),
    Option("--resume", "", None, "continue the run in --out from its newest checkpoint", _FLAG),
    Option("--init-from", "", str, "start from these weights and fine-tune: a model whose weights ship (e.g. "
           "fusionnet_cpu) or a .safetensors file; not with --resume", {"metavar": "MODEL|FILE"}),
    Option("--init-partial", "", None, "with --init-from: tensors of the model that the weights lack (a larger "
           "variant, e.g. --set model_kwargs.detail_hidden=8) keep their fresh initialisation", _FLAG),
    Option("--steps", "", int, "total optimizer steps (stage lengths and schedules scaled to fit)"),
    Option("--batch-size", "data.batch_size", int, "pairs per step per process"),
    Option("--crop", "data.crop", int, "training crop side in pixels"),
    Option("--lr", "stages.*.optimizer.lr", float, "learning rate of every stage"),
    Option("--seed", "seed", int, "random seed (model init, data order, crops)"),
    Option("--device", "device", str, "auto, cpu, cuda, cuda:N"),
    Option("--amp", "amp", str, "mixed precision on CUDA", {"choices": ("auto", "bf16", "fp16", "off")}),
    Option("--threads", "threads", int, "torch CPU threads (0: torch default)"),
    Option("--workers", "data.workers", int, "DataLoader worker processes"),
    Option("--boxes", "data.boxes", _none_is_empty,
           "box annotations: folder (YOLO/VOC) or COCO json; 'none' to ignore"),
    Option("--masks", "data.masks", _none_is_empty, "foreground mask folder; 'none' to ignore"),
    Option("--pseudo", "data.pseudo.mode", str, "pseudo-labels for pairs without labels",
           {"choices": ("auto", "always", "never")}),
    Option("--val", "val_path", str, "validation dataset folder"),
    Option("--val-every", "val_every", int, "steps between validations"),
    Option("--checkpoint-every", "checkpoint_every", int, "steps between checkpoints"),
    Option("--log-every", "log_every", int, "steps between log rows"),
    Option("--set", "", str, "override any setting, e.g. data.rot90=true or stages.0.schedule.name=cosine",
           {"action": "append", "default": [], "metavar": "KEY=VALUE"}),
    Option("--print-config", "", None, "print the resolved configuration and exit", _FLAG),
    Option("--check", "", None, "check the data and model, print the plan, and exit", _FLAG),
    Option("-q --quiet", "", None, "no progress bar", _FLAG),
)


def _dest(option: Option) -> str:
    return option.flags.split()[-1].lstrip("-").replace("-", "_")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model on a folder of infrared/visible pairs",
        description="Train a registered model with unsupervised fusion losses (and boxes, masks or pseudo-labels "
        "where the model's recipe uses them). See docs/training.md.",
    )
    for o in OPTIONS:
        kwargs = copy.deepcopy(o.extra) if o.type is None else {"type": o.type, **copy.deepcopy(o.extra)}
        p.add_argument(*o.flags.split(), help=o.help, **kwargs)
    p.set_defaults(func=_cmd_train)


def _assign(obj: Any, path: str, value: Any) -> None:
    """Set the dotted field ``path`` of ``obj``; a ``*`` part stands for every item of a list."""
    head, _, rest = path.partition(".")
    if not rest:
        setattr(obj, head, value)
    elif head == "*":
        for item in obj:
            _assign(item, rest, value)
    else:
        _assign(getattr(obj, head), rest, value)


def apply_options(cfg, args) -> None:
    """Copy every option of :data:`OPTIONS` with a configuration path that was given into ``cfg``."""
    for o in OPTIONS:
        value = getattr(args, _dest(o), None)
        if o.path and value is not None:
            _assign(cfg, o.path, value)


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


def _start_config(args):
    """The run's saved configuration (``--resume``) or the model's recipe and preset."""
    from ..models import list_models
    from .loop import load_run_config
    from .recipes import get_recipe, make_config

    out = Path(args.out)
    if args.resume and (out / "config.json").is_file():
        cfg = load_run_config(out)
        if args.model and args.model != cfg.model:
            raise ValueError(f"--resume: the run in '{out}' trains '{cfg.model}', not '{args.model}'")
        return cfg
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
        raise ValueError(f"--preset {args.preset}: unknown for model '{args.model}'; "
                         f"choose one of {', '.join(presets)}")
    return make_config(args.model, args.preset)


def _apply_config_file(cfg, path: str):
    from .config import apply_overrides, load_toml

    if not Path(path).is_file():
        raise FileNotFoundError(f"--config '{path}': file not found")
    try:
        return apply_overrides(cfg, load_toml(path))
    except ValueError as exc:
        msg = " ".join(str(exc).split())
        raise type(exc)(msg if path in msg else f"--config '{path}': {msg}") from exc


def _apply_data_folders(cfg, args) -> None:
    if args.data:
        cfg.data.path, cfg.data.ir_dir, cfg.data.vis_dir = args.data[0], "", ""
        cfg.data.more = list(args.data[1:])
    if args.ir or args.vis:
        if not (args.ir and args.vis):
            raise ValueError("--ir and --vis go together")
        cfg.data.path, cfg.data.ir_dir, cfg.data.vis_dir, cfg.data.more = "", args.ir, args.vis, []


def _absolute_paths(cfg) -> None:
    """Data, validation, label and weight paths made absolute, so that ``--resume`` works from any folder."""
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


def resolve_config(args):
    """The :class:`~ivfuse.train.config.TrainConfig` the options describe (see the module docstring)."""
    from .config import apply_dotted

    init_from = getattr(args, "init_from", None)
    if args.resume and init_from:
        raise ValueError("--init-from starts a new run from weights; it cannot be combined with --resume, which "
                         "continues the run in --out from its own checkpoint")
    cfg = _start_config(args)
    if init_from:
        cfg.init_from = init_from
    if getattr(args, "init_partial", False):
        cfg.init_partial = True
    if args.config:
        cfg = _apply_config_file(cfg, args.config)
    _apply_data_folders(cfg, args)
    if args.steps is not None:
        cfg = scale_to_steps(cfg, args.steps)
    apply_options(cfg, args)
    if args.set:
        try:
            cfg = apply_dotted(cfg, args.set)
        except ValueError as exc:
            raise type(exc)(f"--set: {' '.join(str(exc).split())}") from exc
    _absolute_paths(cfg)
    if cfg.init_partial and not cfg.init_from:  # checked on the resolved settings: --config or --set may give it
        raise ValueError("--init-partial needs --init-from")
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
