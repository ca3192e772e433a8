"""--shard I/N and RANK/WORLD_SIZE: N processes split a dataset or a list of clips without overlap or gaps."""

from __future__ import annotations

import numpy as np
import pytest

from ivfuse.cli import main
from ivfuse.io import write_image
from ivfuse.shard import parse_shard, select_shard


def test_parse_shard():
    assert parse_shard("2/5", {}) == (2, 5)
    assert parse_shard(None, {}) == (0, 1)
    assert parse_shard(None, {"RANK": "1", "WORLD_SIZE": "2"}) == (1, 2)
    assert parse_shard("0/3", {"RANK": "1", "WORLD_SIZE": "2"}) == (0, 3)  # --shard wins
    for bad in ("3/3", "-1/2", "1", "a/b", "1/0", "1/2/3"):
        with pytest.raises(ValueError, match="--shard must be I/N"):
            parse_shard(bad, {})
    with pytest.raises(ValueError, match="RANK/WORLD_SIZE"):
        parse_shard(None, {"RANK": "4", "WORLD_SIZE": "2"})


def test_select_shard_partitions():
    items = list(range(11))
    parts = [select_shard(items, (i, 4)) for i in range(4)]
    assert sorted(x for p in parts for x in p) == items
    assert select_shard(items, None) == items


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c", "d", "e"):
        write_image(tmp_path / "data" / "ir" / f"{name}.png", rng.random((20, 24)).astype(np.float32))
        write_image(tmp_path / "data" / "vi" / f"{name}.png", rng.random((20, 24, 3)).astype(np.float32))
    return tmp_path / "data"


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def test_fuse_shards_union_equals_single_run(dataset, tmp_path, monkeypatch):
    base = ["-q", "--threads", "1", "--model", "average"]
    assert main(["fuse", str(dataset), "-o", str(tmp_path / "all"), *base]) == 0
    parts = []
    for i in range(3):
        out = tmp_path / f"s{i}"
        assert main(["fuse", str(dataset), "-o", str(out), "--shard", f"{i}/3", *base]) == 0
        parts.append(_files(out))
    assert sum(len(p) for p in parts) == 5  # no overlap
    union = {k: v for p in parts for k, v in p.items()}
    assert union == _files(tmp_path / "all")  # no gap, same bytes
    assert sorted(parts[1]) == ["b.png", "e.png"]
    # torchrun's variables select the shard when --shard is absent
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert main(["fuse", str(dataset), "-o", str(tmp_path / "env"), *base]) == 0
    assert _files(tmp_path / "env") == parts[1]


def _clip(path, level: int, n: int = 3):
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 32, 24, "yuv420p"
        for _ in range(n):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((24, 32, 3), level, np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_fuse_video_clip_shards(tmp_path):
    names = ["c0", "c1", "c2", "c3", "c4"]
    for k, name in enumerate(names):
        for sub in ("ir", "vi"):
            (tmp_path / sub).mkdir(exist_ok=True)
            _clip(tmp_path / sub / f"{name}.mp4", 30 * k + 20)
    base = ["--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vi"), "--model", "average", "-q", "--threads", "1"]
    assert main(["fuse-video", *base, "-o", str(tmp_path / "all"), "--frames-out", str(tmp_path / "fr")]) == 0
    assert sorted(p.name for p in (tmp_path / "fr").iterdir()) == names
    parts = []
    for i in range(2):
        assert main(["fuse-video", *base, "-o", str(tmp_path / f"s{i}"), "--shard", f"{i}/2"]) == 0
        parts.append(sorted(p.name for p in (tmp_path / f"s{i}").iterdir()))
    assert parts == [["c0.mp4", "c2.mp4", "c4.mp4"], ["c1.mp4", "c3.mp4"]]
    assert sorted(parts[0] + parts[1]) == sorted(p.name for p in (tmp_path / "all").iterdir())


def test_fuse_video_bad_clip_in_a_folder_is_reported_and_the_rest_fused(tmp_path, capsys):
    for sub in ("ir", "vi"):
        (tmp_path / sub).mkdir()
        _clip(tmp_path / sub / "good.mp4", 100)
    (tmp_path / "ir" / "bad.mp4").write_text("no video")
    _clip(tmp_path / "vi" / "bad.mp4", 50)
    code = main(["fuse-video", "--ir", str(tmp_path / "ir"), "--vis", str(tmp_path / "vi"), "-o", str(tmp_path / "o"),
                 "--model", "average", "-q", "--threads", "1"])
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["good.mp4"]
    assert "bad.mp4" in capsys.readouterr().err
