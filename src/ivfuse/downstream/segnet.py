"""The segmentation network of ``ivfuse downstream segment``: a torchvision model, trained and scored on one input.

The network comes from ``torchvision.models.segmentation`` (the ``segment`` extra), built with
``weights=None, weights_backbone=None`` (random initialisation: nothing is downloaded), or
started from a state dict the user gives (``torch.load(..., weights_only=True)`` or safetensors).

Images are read as stored (:func:`ivfuse.io.read_image`; gray as three equal channels),
resized to the input size (bilinear, antialiased; masks nearest), normalised with the ImageNet
mean and standard deviation (torchvision's convention, so that user weights see what they were
trained on). Training: AdamW, a poly learning-rate decay (power 0.9) over all steps, cross-entropy
with the ignore index, random horizontal flips; the order, the flips and the initialisation come
from the seed only, so every input of a comparison sees the same schedule. After the last epoch
the batch-norm statistics are recomputed over the train images (:func:`_precise_bn`). Scoring: the logits
are upsampled (bilinear) to each mask's own size and the argmax is compared pixel by pixel
(:func:`ivfuse.downstream.masks.confusion_matrix`).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .masks import IGNORE_INDEX, confusion_matrix, read_class_mask, scores_from_confusion

__all__ = ["ARCHS", "build_network", "input_size", "load_weights", "train_and_evaluate"]

#: The torchvision segmentation networks offered (``--arch``); the first is the default, sized for a CPU.
ARCHS = ("lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "deeplabv3_resnet50", "deeplabv3_resnet101",
         "fcn_resnet50", "fcn_resnet101")

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def build_network(arch: str, num_classes: int, weights: str | os.PathLike | None = None):
    """A torchvision segmentation network with ``num_classes`` outputs, randomly initialised or from ``weights``.

    Returns:
        (the module, the number of tensors loaded from ``weights`` (0 without)).

    Raises:
        MissingExtraError: torchvision is not installed (names the ``segment`` extra).
        ValueError: unknown ``arch``, or a weights file that is missing, unreadable or matches nothing.
    """
    from .._extras import require

    if arch not in ARCHS:
        raise ValueError(f"--arch must be one of {', '.join(ARCHS)}, got '{arch}'")
    require("torchvision", "segment", "ivfuse downstream segment")
    from torchvision.models import segmentation

    net = getattr(segmentation, arch)(weights=None, weights_backbone=None, num_classes=num_classes)
    loaded = load_weights(net, weights) if weights else 0
    return net, loaded


def load_weights(net, path: str | os.PathLike) -> int:
    """Copy the tensors of a state dict (``.safetensors``, or a torch file read with ``weights_only=True``) whose
    names and shapes match ``net``'s; others (e.g. a classifier head for another class count) stay as they are.

    Returns:
        The number of tensors loaded.

    Raises:
        ValueError: missing or unreadable file, or no tensor matches (the message names the file).
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"'{p}': weights file not found (--weights; nothing is downloaded)")
    try:
        if p.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise many types for a bad file
        raise ValueError(f"'{p}': cannot read the weights ({type(exc).__name__}: {exc})".splitlines()[0]) from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"'{p}': expected a state dict of tensors, got {type(state).__name__}")
    own = net.state_dict()
    keep = {}
    for k, v in state.items():
        k = k[len("module."):] if k.startswith("module.") else k
        if k in own and torch.is_tensor(v) and tuple(v.shape) == tuple(own[k].shape):
            keep[k] = v
    if not keep:
        raise ValueError(f"'{p}': no tensor name and shape matches the {type(net).__name__} network")
    net.load_state_dict(keep, strict=False)
    return len(keep)


def input_size(height: int, width: int, imgsz: int) -> tuple[int, int]:
    """The network's input (h, w): the longer side ``imgsz``, the shorter one scaled with the aspect ratio and
    rounded to a multiple of 32 (at least 32)."""
    if height >= width:
        return imgsz, max(32, int(round(imgsz * width / height / 32)) * 32)
    return max(32, int(round(imgsz * height / width / 32)) * 32), imgsz


def _read_input(path: Path, mask_shape: tuple[int, int], mask_path: Path, size: tuple[int, int]):
    """(3, h, w) float32 image in [0, 1], resized to ``size``; its native size must be the mask's."""
    import torch
    import torch.nn.functional as F

    from ..io import read_image

    img = read_image(path)
    if img.shape[:2] != tuple(mask_shape):
        raise ValueError(f"'{path}': image is {img.shape[1]}x{img.shape[0]}, its mask '{mask_path}' is "
                         f"{mask_shape[1]}x{mask_shape[0]}")
    t = torch.from_numpy(np.ascontiguousarray(img))
    t = t[None].expand(3, -1, -1) if t.ndim == 2 else t.permute(2, 0, 1)
    return F.interpolate(t[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)[0]


def _normalise(x):
    import torch

    mean = torch.tensor(_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _load_train(items: Sequence[tuple], size: tuple[int, int]):
    """Stack the train split: (N, 3, h, w) uint8 images and (N, h, w) uint8 masks (nearest)."""
    import torch
    import torch.nn.functional as F

    imgs, masks = [], []
    for item, path in items:
        mask = read_class_mask(item.mask)
        imgs.append((_read_input(Path(path), mask.shape, item.mask, size) * 255).round().to(torch.uint8))
        m = torch.from_numpy(mask.astype(np.float32))[None, None]
        masks.append(F.interpolate(m, size=size, mode="nearest-exact")[0, 0].to(torch.uint8))
    return torch.stack(imgs), torch.stack(masks)


def _poly(total: int, power: float = 0.9) -> Callable[[int], float]:
    return lambda step: max(0.0, 1.0 - step / max(total, 1)) ** power


def train_and_evaluate(train: Sequence[tuple], test: Sequence[tuple], names: Sequence[str], seed: int, settings,
                       device: str, progress: Callable[[str], None] | None = None) -> dict:
    """Train the network on one input's train split with ``seed``; score its last weights on the test split.

    Args:
        train, test: ``[(MaskedImage, image path), ...]`` for this input.
        names: the class names (their number is the network's output count).
        seed: initialisation, order and flips.
        settings: a :class:`ivfuse.downstream.segment.SegmentSettings`.
        device: a torch device string (``cpu``, ``cuda:0``).
        progress: called with a line per epoch (None: silent).

    Returns:
        ``{"seed", "iou": {class/"mean": v}, "acc": {...}, "pixel_acc", "loss" (last epoch's mean), "steps",
        "weights_loaded", "cpu_s", "wall_s", "threads", "device"}`` and ``"state"`` (the trained state dict).
    """
    import torch
    import torch.nn.functional as F

    nc = len(names)
    t0, c0 = time.perf_counter(), time.process_time()
    first = read_class_mask(train[0][0].mask).shape
    size = input_size(first[0], first[1], settings.imgsz)
    x_all, y_all = _load_train(train, size)
    torch.manual_seed(seed)  # the same initial network for every input of this seed
    net, loaded = build_network(settings.arch, nc, settings.weights)
    net.to(device)
    if device.startswith("cuda"):
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    gen = torch.Generator().manual_seed(seed)
    n, bs = len(train), min(settings.batch, len(train))
    per_epoch = n // bs if n % bs == 1 else math.ceil(n / bs)  # a last batch of one breaks batch norm: dropped
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _poly(settings.epochs * per_epoch))
    loss_epoch = math.nan
    for epoch in range(settings.epochs):
        net.train()
        order = torch.randperm(n, generator=gen)
        flip = torch.rand(n, generator=gen) < 0.5
        total, count = 0.0, 0
        for b in range(per_epoch):
            idx = order[b * bs:(b + 1) * bs]
            x = x_all[idx].float() / 255.0
            y = y_all[idx].long()
            f = flip[idx]
            x[f], y[f] = x[f].flip(-1), y[f].flip(-1)
            x, y = _normalise(x.to(device)), y.to(device)
            logits = net(x)["out"]
            loss = F.cross_entropy(logits, y, ignore_index=IGNORE_INDEX)
            if not torch.isfinite(loss):
                loss = logits.sum() * 0.0  # a batch of ignored pixels only: no gradient
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, count = total + float(loss.detach()), count + 1
        loss_epoch = total / max(count, 1)
        if progress:
            progress(f"epoch {epoch + 1}/{settings.epochs}: loss {loss_epoch:.4f}")
    _precise_bn(net, x_all, bs, device)
    conf = evaluate(net, test, nc, size, device)
    s = scores_from_confusion(conf)
    out = {"seed": seed, "iou": {**dict(zip(names, map(float, s["iou"]))), "mean": s["miou"]},
           "acc": {**dict(zip(names, map(float, s["acc"]))), "mean": s["macc"]}, "pixel_acc": s["pixel_acc"],
           "test_pixels": int(conf.sum()), "loss": loss_epoch, "steps": settings.epochs * per_epoch,
           "weights_loaded": loaded, "input_size": list(size)}
    out.update(cpu_s=time.process_time() - c0, wall_s=time.perf_counter() - t0, threads=torch.get_num_threads(),
               device=device, state={k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()})
    return out


def _precise_bn(net, x_all, batch: int, device: str) -> None:
    """Recompute the batch-norm statistics of the trained network over the train images (no flips, no gradient).

    torchvision's MobileNetV3 updates its running statistics with momentum 0.01, so after a short schedule they
    are still mostly those of the random start and the network in eval mode predicts nothing useful. An equal-weight
    average over the train split replaces them (what "precise BN" does); the weights are untouched.
    """
    import torch

    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches that follow
    net.train()
    with torch.no_grad():
        for b in range(0, len(x_all), batch):
            net(_normalise((x_all[b:b + batch].float() / 255.0).to(device)))
    for m, mom in zip(bns, saved):
        m.momentum = mom


def evaluate(net, items: Sequence[tuple], num_classes: int, size: tuple[int, int], device: str) -> np.ndarray:
    """Accumulate the confusion matrix of ``net`` over ``[(MaskedImage, image path), ...]`` at the masks' sizes."""
    import torch
    import torch.nn.functional as F

    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    net.eval()
    with torch.no_grad():
        for item, path in items:
            mask = read_class_mask(item.mask)
            x = _normalise(_read_input(Path(path), mask.shape, item.mask, size)[None].to(device))
            logits = F.interpolate(net(x)["out"], size=mask.shape, mode="bilinear", align_corners=False)
            conf += confusion_matrix(mask, logits.argmax(1)[0].cpu().numpy(), num_classes)
    return conf
