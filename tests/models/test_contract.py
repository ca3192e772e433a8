"""The contract every registered model keeps, checked over ``ivfuse.list_models()``.

Each model is built once with random weights (``pretrained=False``) and run once per input; the
checks then read the cached results. Paper-size variants are run at a tiny input size only: their
code is the same as their ``_cpu`` siblings', which are checked at the full contract sizes.
"""

from __future__ import annotations

import copy

from dataclasses import dataclass, field

import pytest
import torch

import ivfuse
from ivfuse.models.registry import get_model_entry

MODELS = ivfuse.list_models()
PAPER_SIZE = {"fgfusion", "fusionnet", "pomai"}  # a few seconds per forward at 37x53 on two cores
SHAPES = [(1, 1, 37, 53), (2, 1, 32, 32)]  # odd sizes, and a batch of two
TINY_SHAPES = [(1, 1, 9, 11), (2, 1, 8, 8)]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _pair(shape: tuple[int, ...], seed: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g).to(device), torch.rand(shape, generator=g).to(device)


@dataclass
class Run:
    """One model's results on the contract inputs."""

    model: torch.nn.Module
    trainable: bool
    outputs: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (input ir, fused)
    repeat: torch.Tensor | None = None  # the first input fused a second time
    maps: tuple[torch.Tensor, dict] | None = None  # (fused, maps) of the first input with return_maps=True


_RUNS: dict[str, Run] = {}


def _run(name: str) -> Run:
    if name not in _RUNS:
        torch.manual_seed(0)
        model = ivfuse.create_model(name, pretrained=False).eval()
        run = Run(model, get_model_entry(name).trainable)
        with torch.no_grad():
            for k, shape in enumerate(TINY_SHAPES if name in PAPER_SIZE else SHAPES):
                ir, vis = _pair(shape, seed=k)
                run.outputs.append((ir, model(ir, vis)))
            ir, vis = _pair(run.outputs[0][0].shape, seed=0)
            run.repeat = model(ir, vis)
            run.maps = model(ir, vis, return_maps=True)
        _RUNS[name] = run
    return _RUNS[name]


def test_every_model_is_covered():
    assert {"average", "max", "laplacian", "dwt", "gff", "tiny_cnn"} <= set(MODELS)
    assert {f"{p}_cpu" for p in PAPER_SIZE} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_output_shape_dtype_and_range(name):
    for ir, fused in _run(name).outputs:
        assert fused.shape == ir.shape, name
        assert fused.dtype == torch.float32, name
        assert torch.isfinite(fused).all(), name
        assert fused.min() >= 0 and fused.max() <= 1, name


@pytest.mark.parametrize("name", MODELS)
def test_eval_mode_is_deterministic(name):
    run = _run(name)
    assert not run.model.training
    assert torch.equal(run.outputs[0][1], run.repeat), name


@pytest.mark.parametrize("name", MODELS)
def test_maps_are_images_in_the_unit_range(name):
    run = _run(name)
    fused, maps = run.maps
    assert torch.equal(fused, run.repeat), name  # asking for the maps does not change the result
    for key, m in maps.items():
        assert m.shape == fused.shape, (name, key)
        assert torch.isfinite(m).all() and m.min() >= 0 and m.max() <= 1, (name, key)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", MODELS)
def test_output_follows_the_input_device(name, device):
    model = _run(name).model.to(device)
    try:
        ir, vis = _pair(TINY_SHAPES[0], seed=3, device=device)
        with torch.no_grad():
            fused = model(ir, vis)
        assert fused.device == ir.device, name
        assert fused.shape == ir.shape and fused.dtype == torch.float32, name
    finally:
        model.to("cpu")


@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_parameter(name):
    run = _run(name)
    params = [p for p in run.model.parameters() if p.requires_grad]
    if not run.trainable:
        assert not params, f"{name} is registered as training-free but has trainable parameters"
        pytest.skip(f"{name} is a classical baseline: no parameters to train")
    if name in PAPER_SIZE:
        pytest.skip(f"{name} is paper size (seconds per backward); {name}_cpu runs the same code")
    model = copy.deepcopy(run.model)  # the zero-initialised layers may be perturbed below

    def backward():
        model.zero_grad(set_to_none=True)
        model.train()
        try:
            ir, vis = _pair((1, 1, 16, 20), seed=4)
            ir.requires_grad_(True)
            # The maps (gates, foreground heads) carry the parameters the fused image does not use.
            fused, maps = model(ir, vis, return_maps=True)
            sum((t.square().mean() for t in maps.values()), fused.square().mean()).backward()
        finally:
            model.eval()
        missing = [
            n
            for n, p in model.named_parameters()
            if p.requires_grad
            and (p.grad is None or not torch.isfinite(p.grad).all() or float(p.grad.abs().sum()) == 0)
        ]
        return ir, missing

    ir, missing = backward()
    if missing:
        # A layer that starts at zero (a residual branch that leaves the output unchanged until trained) holds
        # back the gradient of the layers before it at initialisation only: once it is non-zero, as after the
        # first optimiser step, every parameter must be reached.
        zero = [n for n, p in model.named_parameters() if p.dim() > 1 and not p.detach().any()]
        assert zero, f"{name}: no (finite, non-zero) gradient for {missing[:5]}"
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in zero:
                    p.normal_(0.0, 0.01, generator=torch.Generator().manual_seed(1))
        ir, missing = backward()
    assert not missing, f"{name}: no (finite, non-zero) gradient for {missing[:5]}"
    assert ir.grad is not None and ir.grad.abs().sum() > 0, name  # the input is differentiated too
