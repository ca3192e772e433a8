"""Training on several dataset folders at once (``ivfuse train --data A --data B``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ivfuse.data import ConcatPairs, DataConfig, DatasetError, PairedDataset, training_pairs


def make_folder(root: Path, names, size=(40, 48), boxes: bool = False, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for sub in ("ir", "vi"):
        (root / sub).mkdir(parents=True)
    for n in names:
        for sub in ("ir", "vi"):
            Image.fromarray(rng.integers(0, 255, size, dtype=np.uint8)).save(root / sub / f"{n}.png")
        if boxes:
            (root / "labels").mkdir(exist_ok=True)
            (root / "labels" / f"{n}.txt").write_text("0 0.5 0.5 0.25 0.5\n")
    return root


def test_two_folders_concatenate_with_their_own_labels(tmp_path):
    a = make_folder(tmp_path / "roadscene", ["a1", "a2", "a3"])
    b = make_folder(tmp_path / "msrs", ["b1", "b2"], boxes=True, seed=1)
    cfg = DataConfig(path=str(a), more=[str(b)], crop=16, batch_size=2)
    ds = training_pairs(cfg)
    assert isinstance(ds, ConcatPairs) and len(ds) == 5
    assert ds.names() == ["roadscene/a1", "roadscene/a2", "roadscene/a3", "msrs/b1", "msrs/b2"]
    items = [ds[(i, 7)] for i in range(len(ds))]
    assert [it["name"] for it in items] == ds.names()
    assert [bool(it["has_boxes"]) for it in items] == [False, False, False, True, True]
    single = PairedDataset(b, cfg, train=True)
    assert np.array_equal(items[3]["ir"].numpy(), single[(0, 7)]["ir"].numpy())  # same sample, same seed
    assert "2 folders" in ds.summary() and "msrs" in ds.summary()
    with pytest.raises(IndexError):
        ds[5]


def test_one_folder_gives_the_plain_dataset(tmp_path):
    a = make_folder(tmp_path / "a", ["x", "y"])
    assert isinstance(training_pairs(DataConfig(path=str(a), crop=16)), PairedDataset)


def test_problems_of_every_folder_are_reported_together(tmp_path):
    a = make_folder(tmp_path / "good", ["x"])
    empty = tmp_path / "empty"
    (empty / "ir").mkdir(parents=True)
    (empty / "vi").mkdir()
    missing = tmp_path / "missing"
    with pytest.raises(DatasetError) as info:
        training_pairs(DataConfig(path=str(a), more=[str(empty), str(missing)], crop=16))
    msg = str(info.value)
    assert "empty" in msg and "missing" in msg


def test_cli_repeats_data_and_refuses_one_label_folder_for_several(tmp_path):
    import argparse

    from ivfuse.train.cli import add_parser, resolve_config

    a = make_folder(tmp_path / "a", ["x"])
    b = make_folder(tmp_path / "b", ["y"])
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_parser(sub)
    args = parser.parse_args(["train", "--model", "fusionnet_cpu", "--data", str(a), "--data", str(b), "--out", "x"])
    cfg = resolve_config(args)
    assert cfg.data.path == str(a.resolve()) and cfg.data.more == [str(b.resolve())]
    args = parser.parse_args(["train", "--model", "fusionnet_cpu", "--data", str(a), "--data", str(b),
                              "--boxes", str(tmp_path), "--out", "x"])
    with pytest.raises(ValueError, match="several --data"):
        resolve_config(args)


def test_weight_card_names_every_folder_and_the_loss_as_configured(tmp_path):
    import argparse

    from torch import nn

    from ivfuse.train.cli import add_parser, resolve_config
    from ivfuse.train.run_files import weight_card

    a = make_folder(tmp_path / "roadscene", ["x"])
    b = make_folder(tmp_path / "msrs", ["y"])
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--model", "fusionnet_cpu", "--preset", "cpu", "--data", str(a),
                              "--data", str(b), "--set", "loss.kwargs.base_sigma=4.0", "--out", "x"])
    cfg = resolve_config(args)
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"not read as a model here")
    card = weight_card(cfg, weights, 10, nn.Conv2d(1, 1, 1), {}, 60.0)
    assert str(a.resolve()) in card.training_data and str(b.resolve()) in card.training_data
    assert "base_sigma=4.0" in card.notes and "intensity=10.0" in card.notes
