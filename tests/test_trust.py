"""A user's sources are never written, bad settings are refused before the work, errors are one
line, interruptions leave nothing half-written, and the exit codes say what happened."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import ivfuse
from ivfuse import api
from ivfuse.cli import main
from ivfuse.io import write_image
from ivfuse.models import MissingWeightsError, create_model
from ivfuse.threads import auto_threads, parse_threads


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _dataset(root: Path, rng, n: int = 3, size=(24, 30), vis_ext=".jpg") -> Path:
    for i in range(n):
        write_image(root / "ir" / f"{i:02d}.png", rng.random(size).astype(np.float32))
        write_image(root / "vi" / f"{i:02d}{vis_ext}", rng.random((*size, 3)).astype(np.float32))
    return root


@pytest.fixture
def pair(tmp_path, rng):
    ir, vis = tmp_path / "ir.jpg", tmp_path / "v.jpg"
    write_image(ir, rng.random((20, 26)).astype(np.float32))
    write_image(vis, rng.random((20, 26, 3)).astype(np.float32))
    return ir, vis


# --- sources are never written -----------------------------------------------------------------

@pytest.mark.parametrize("target", ["vis", "ir", "vis_link"])
def test_single_pair_output_onto_a_source_is_refused(tmp_path, pair, capsys, target):
    ir, vis = pair
    before = _digest(tmp_path)
    out = {"vis": vis, "ir": ir, "vis_link": tmp_path / "link.jpg"}[target]
    if target == "vis_link":
        os.symlink(vis, out)
        before = _digest(tmp_path)
    assert main(["fuse", "--ir", str(ir), "--vis", str(vis), "-o", str(out), "--model", "average"]) == 1
    err = capsys.readouterr().err
    assert "would replace the input" in err and err.count("\n") == 1
    assert _digest(tmp_path) == before


def test_folder_output_inside_an_input_folder_is_refused(tmp_path, rng, capsys):
    ds = _dataset(tmp_path / "ds", rng)
    before = _digest(ds)
    assert main(["fuse", str(ds), "-o", str(ds / "vi"), "--ext", ".jpg", "--model", "average", "-q"]) == 1
    assert main(["fuse", str(ds), "-o", str(ds / "ir" / "sub"), "--model", "average", "-q"]) == 1
    assert main(["fuse", "--ir", str(ds / "ir"), "--vis", str(ds / "vi"), "-o", str(ds / "vi"), "-q",
                 "--model", "average"]) == 1
    assert "inside the input folder" in capsys.readouterr().err
    assert _digest(ds) == before
    # Beside the modality folders is fine: those are the only folders read.
    assert main(["fuse", str(ds), "-o", str(ds / "fused"), "--model", "average", "-q"]) == 0
    assert len(list((ds / "fused").glob("*.png"))) == 3


def test_existing_single_output_kept_unless_overwrite(tmp_path, pair, capsys):
    ir, vis = pair
    out = tmp_path / "f.png"
    args = ["fuse", "--ir", str(ir), "--vis", str(vis), "-o", str(out), "--model", "average"]
    assert main(args) == 0
    out.write_bytes(b"user file")
    assert main(args) == 1
    assert "exists" in capsys.readouterr().err and out.read_bytes() == b"user file"
    assert main([*args, "--skip-existing"]) == 0 and out.read_bytes() == b"user file"
    assert main([*args, "--overwrite"]) == 0 and out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(FileExistsError):
        ivfuse.fuse(str(ir), str(vis), "average", output=out)


def test_folder_run_keeps_existing_outputs_and_resumes(tmp_path, rng, capsys):
    ds = _dataset(tmp_path / "ds", rng, n=4)
    out = tmp_path / "out"
    out.mkdir()
    (out / "01.png").write_bytes(b"from an earlier run")
    assert main(["fuse", str(ds), "-o", str(out), "--model", "average", "-q"]) == 1  # kept, and said so
    captured = capsys.readouterr()
    assert "1 outputs exist and were kept" in captured.err and "01.png" in captured.err
    assert (out / "01.png").read_bytes() == b"from an earlier run"
    assert sorted(p.name for p in out.iterdir()) == ["00.png", "01.png", "02.png", "03.png"]
    (out / "02.png").unlink()
    res = api.fuse_folder(ds, out, "average", progress=False)
    assert [p.name for p in res.written] == ["02.png"] and len(res.skipped) == 3
    assert main(["fuse", str(ds), "-o", str(out), "--model", "average", "-q", "--skip-existing"]) == 0
    assert main(["fuse", str(ds), "-o", str(out), "--model", "average", "-q", "--overwrite"]) == 0
    assert (out / "01.png").read_bytes()[:4] == b"\x89PNG"


# --- settings refused before any work ----------------------------------------------------------

@pytest.mark.parametrize("extra, message", [
    (["--ext", ".xyz"], "--ext"),
    (["--ext", ".jpg", "--bit-depth", "16"], "--bit-depth 16"),
    (["--batch-size", "0"], "--batch-size"),
    (["--device", "gpu"], "--device 'gpu'"),
    (["--device", "mps"], "--device 'mps'"),
    (["--device", "cuda:7"], "--device 'cuda:7'"),
    (["--threads", "0"], "--threads"),
    (["--model", "fusionnet"], "--checkpoint"),
])
def test_bad_settings_fail_before_the_first_pair(tmp_path, rng, capsys, monkeypatch, extra, message):
    if "cuda:7" in extra and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that device")
    ds = _dataset(tmp_path / "ds", rng)
    calls = []
    monkeypatch.setattr(api, "load_pair", lambda *a, **k: calls.append(a))
    out = tmp_path / "out"
    assert main(["fuse", str(ds), "-o", str(out), "--model", "average", "-q", *extra]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert "checkpoint_path" not in err  # CLI messages speak CLI
    assert calls == [] and not out.exists()


def test_unwritable_output_folder_fails_before_the_first_pair(tmp_path, rng, capsys, monkeypatch):
    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux /proc, a folder nobody can create files in")
    ds = _dataset(tmp_path / "ds", rng)
    calls = []
    monkeypatch.setattr(api, "load_pair", lambda *a, **k: calls.append(a))
    assert main(["fuse", str(ds), "-o", "/proc/ivfuse-out", "--model", "average", "-q"]) == 1
    assert "not writable" in capsys.readouterr().err and calls == []
    ir, vis = ds / "ir" / "00.png", ds / "vi" / "00.jpg"
    assert main(["fuse", "--ir", str(ir), "--vis", str(vis), "-o", "/proc/f.png", "--model", "average"]) == 1
    err = capsys.readouterr().err
    assert "not writable" in err and err.count("\n") == 1


def test_only_duplicate_stems_says_so(tmp_path, rng, capsys):
    ds = tmp_path / "ds"
    for ext in (".png", ".bmp"):
        write_image(ds / "ir" / f"a{ext}", rng.random((8, 8)).astype(np.float32))
        write_image(ds / "vi" / f"a{ext}", rng.random((8, 8)).astype(np.float32))
    assert main(["fuse", str(ds), "-o", str(tmp_path / "o"), "--model", "average", "-q"]) == 1
    assert "several files of different extensions" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path, pair):
    ir, vis = pair
    with pytest.raises(ValueError, match="--device"):
        main(["fuse", "--ir", str(ir), "--vis", str(vis), "-o", str(tmp_path / "f.png"), "--device", "gpu", "--debug"])


# --- interruption --------------------------------------------------------------------------------

def test_sigterm_leaves_no_partial_files(tmp_path, rng):
    ds = _dataset(tmp_path / "ds", rng, n=80, size=(160, 200), vis_ext=".png")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ivfuse.cli", "fuse", str(ds), "-o", str(out), "-q",
                             "--model", "gff", "--threads", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out.is_dir() and any(out.glob("*.png"))):
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    written = list(out.glob("*.png"))
    assert 0 < len(written) < 80, "the run must be interrupted midway for this test to mean something"
    assert proc.returncode == 143 and "terminated" in err and "Traceback" not in err
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    # The interrupted run resumes: only the missing outputs are fused.
    res = api.fuse_folder(ds, out, "gff", progress=False)
    assert len(res.written) == 80 - len(written) and len(res.skipped) == len(written)


# --- weights and threads -----------------------------------------------------------------------

def test_create_model_loads_shipped_weights_by_default():
    default = create_model("fusionnet_cpu").state_dict()
    shipped = create_model("fusionnet_cpu", pretrained=True).state_dict()
    random = create_model("fusionnet_cpu", pretrained=False).state_dict()
    assert all(torch.equal(default[k], shipped[k]) for k in shipped)
    assert not all(torch.equal(random[k], shipped[k]) for k in shipped)
    assert isinstance(create_model("fusionnet"), torch.nn.Module)  # no weights ship: random, no error
    with pytest.raises(MissingWeightsError, match="no shipped weights"):
        create_model("fusionnet", pretrained=True)


def test_threads_option_and_auto_choice(tmp_path, pair):
    assert auto_threads(cores=2, load=0.0) == 2
    assert auto_threads(cores=2, load=1.0) == 1  # one core busy: one thread (benchmarks/threads.py)
    assert auto_threads(cores=4, load=7.5) == 1
    assert parse_threads("3") == 3 and 1 <= parse_threads("auto") <= os.cpu_count()
    ir, vis = pair
    old = torch.get_num_threads()
    try:
        assert main(["fuse", "--ir", str(ir), "--vis", str(vis), "-o", str(tmp_path / "f.png"),
                     "--model", "average", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)
