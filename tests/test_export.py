"""ONNX export: parity with PyTorch at small size for every model that exports, cards, errors, the CLI backend."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from ivfuse.cli import main  # noqa: E402
from ivfuse.export import ExportError, OnnxModel, export_onnx, load_model, onnx_bytes  # noqa: E402
from ivfuse.infer import run_model  # noqa: E402
from ivfuse.io import read_image, write_image  # noqa: E402
from ivfuse.models import create_model  # noqa: E402

EXPORTABLE = ["fusionnet_cpu", "fusionnet_mid", "fusionnet", "tiny_cnn", "average", "max", "dwt", "gff"]
NOT_EXPORTABLE = ["pomai_cpu", "pomai_mid", "pomai", "fgfusion_cpu", "fgfusion_mid", "fgfusion", "laplacian"]


def _pair(h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ir = torch.rand(1, 1, h, w, generator=g)
    vis = torch.nn.functional.avg_pool2d(torch.rand(1, 1, h, w, generator=g), 3, 1, 1)
    return ir, vis


def _model(name: str) -> torch.nn.Module:
    """Shipped weights where there are some, else seeded random ones."""
    from ivfuse.models import get_model_entry

    if get_model_entry(name).weights_status() == "available" or not get_model_entry(name).trainable:
        return load_model(name)
    torch.manual_seed(0)
    return create_model(name, pretrained=False).eval()


@pytest.mark.parametrize("name", EXPORTABLE)
def test_parity_at_two_sizes(name):
    torch_model = _model(name)
    onnx_model = load_model(torch_model, backend="onnxruntime")
    assert isinstance(onnx_model, OnnxModel)
    for h, w in ((40, 56), (29, 75)):  # dynamic axes; the second size needs padding outside the graph
        ir, vis = _pair(h, w)
        ref = run_model(torch_model, ir, vis, device="cpu", tile=None)
        got = run_model(onnx_model, ir, vis, device="cpu", tile=None)
        assert got.shape == ref.shape == (1, 1, h, w)
        assert float((got - ref).abs().max()) < 1e-4


def test_batch_axis_is_dynamic():
    m = load_model("fusionnet_cpu", backend="onnxruntime")
    ir, vis = torch.rand(3, 1, 32, 40), torch.rand(3, 1, 32, 40)
    ref = run_model(load_model("fusionnet_cpu"), ir, vis, device="cpu", tile=None)
    assert float((m(ir, vis) - ref).abs().max()) < 1e-4


@pytest.mark.parametrize("name", ["laplacian", "pomai_cpu", "fgfusion_cpu"])
def test_models_that_cannot_export_say_why(name):
    with pytest.raises(ExportError, match=f"model '{name}' cannot be exported to ONNX: .+"):
        onnx_bytes(name)


def test_every_registered_model_is_classified():
    from ivfuse.models import list_models

    assert sorted(EXPORTABLE + NOT_EXPORTABLE) == sorted(list_models())


def test_onnx_model_refuses_sizes_that_are_not_multiples():
    m = load_model("fusionnet_cpu", backend="onnxruntime")
    assert m.pad_multiple == 8
    with pytest.raises(ValueError, match="multiples of 8"):
        m(torch.rand(1, 1, 30, 40), torch.rand(1, 1, 30, 40))


def test_export_cli_writes_model_and_card(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "--model", "fusionnet_cpu", "-o", str(out), "--opset", "18"]) == 0
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["opset"] == 18 and card["model"] == "fusionnet_cpu" and card["pad_multiple"] == 8
    assert card["dynamic_axes"] == ["batch", "height", "width"]
    import onnx

    proto = onnx.load(str(out))
    assert any(o.version == 18 for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    from ivfuse._files import sha256_file

    assert card["sha256"] == sha256_file(out)
    ir, vis = _pair(24, 40, 3)
    ref = run_model(load_model("fusionnet_cpu"), ir, vis, device="cpu", tile=None)
    assert float((run_model(OnnxModel(out), ir, vis, device="cpu", tile=None) - ref).abs().max()) < 1e-4
    # an existing file is kept; a model that cannot export is one line, nothing written
    assert main(["export", "--model", "fusionnet_cpu", "-o", str(out)]) == 1
    assert main(["export", "--model", "laplacian", "-o", str(tmp_path / "l.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "m.onnx" in err[0] and "laplacian" in err[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.onnx"]


def test_export_refuses_other_extensions(tmp_path):
    with pytest.raises(ValueError, match="must end in .onnx"):
        export_onnx("tiny_cnn", tmp_path / "m.pt")


def test_fuse_backend_onnxruntime_matches_torch(tmp_path):
    rng = np.random.default_rng(0)
    for sub in ("ir", "vi"):
        for i in range(2):
            img = rng.random((30, 44, 3) if sub == "vi" else (30, 44)).astype(np.float32)
            write_image(tmp_path / "data" / sub / f"p{i}.png", img)
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["fuse", str(tmp_path / "data"), "-o", str(a), "-q", "--threads", "1", "--backend", "torch"]) == 0
    assert main(["fuse", str(tmp_path / "data"), "-o", str(b), "-q", "--threads", "1", "--backend", "onnxruntime"]) == 0
    for i in range(2):
        x, y = read_image(a / f"p{i}.png"), read_image(b / f"p{i}.png")
        assert x.shape == y.shape == (30, 44, 3)
        assert np.abs(x - y).max() <= 1 / 255 + 1e-6
    onnx_file = tmp_path / "m.onnx"
    export_onnx(None, onnx_file)
    c = tmp_path / "c"
    assert main(["fuse", str(tmp_path / "data"), "-o", str(c), "-q", "--model", str(onnx_file)]) == 0
    assert np.abs(read_image(c / "p0.png") - read_image(a / "p0.png")).max() <= 1 / 255 + 1e-6


def test_torch_backend_refuses_onnx_file(tmp_path):
    with pytest.raises(ValueError, match="needs --backend onnxruntime"):
        load_model(str(tmp_path / "m.onnx"))
    with pytest.raises(FileNotFoundError):
        load_model(str(tmp_path / "m.onnx"), backend="onnxruntime")


def test_fuse_runs_pytorch_by_default_and_onnxruntime_on_request(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for sub in ("ir", "vi"):
        for i in range(2):
            write_image(tmp_path / "data" / sub / f"p{i}.png", rng.random((24, 32)).astype(np.float32))
    data = tmp_path / "data"

    def said(argv):
        capsys.readouterr()
        assert main(argv + ["-q", "--threads", "1"]) == 0
        return capsys.readouterr().out

    assert "onnxruntime" not in said(["fuse", str(data), "-o", str(tmp_path / "t")])  # the default: PyTorch
    ort_out = said(["fuse", str(data), "-o", str(tmp_path / "a"), "--backend", "onnxruntime"])
    assert "fusionnet_cpu, onnxruntime" in ort_out
    for i in range(2):  # the same images within one grey level
        diff = np.abs(read_image(tmp_path / "a" / f"p{i}.png") - read_image(tmp_path / "t" / f"p{i}.png"))
        assert diff.max() <= 1 / 255 + 1e-6
    assert "onnxruntime" not in said(["fuse", str(data), "-o", str(tmp_path / "g"), "--model", "gff"])
    capsys.readouterr()
    assert main(["fuse", str(data), "-o", str(tmp_path / "x"), "--save-maps", "--backend", "onnxruntime", "-q"]) != 0
    assert "--save-maps needs --backend torch" in capsys.readouterr().err
