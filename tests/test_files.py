"""Atomic file writing and file digests."""

from __future__ import annotations

import hashlib
import os

import pytest

from ivfuse._files import atomic_write, sha256_file, umask_mode


def test_atomic_write_bytes(tmp_path):
    p = atomic_write(tmp_path / "a.bin", b"\x00\x01\xff")
    assert p == tmp_path / "a.bin"
    assert p.read_bytes() == b"\x00\x01\xff"
    assert sorted(os.listdir(tmp_path)) == ["a.bin"]


def test_atomic_write_str_is_utf8_without_newline_translation(tmp_path):
    p = atomic_write(tmp_path / "sub" / "a.txt", "é\r\nline\n")
    assert p.read_bytes() == "é\r\nline\n".encode("utf-8")


def test_atomic_write_callable_replaces_existing(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    atomic_write(target, lambda fh: (fh.write(b"new "), fh.write(b"content")))
    assert target.read_bytes() == b"new content"
    assert sorted(os.listdir(tmp_path)) == ["a.bin"]


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_failure_leaves_destination_and_no_part_file(tmp_path, exc):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def boom(fh):
        fh.write(b"partial")
        raise exc

    with pytest.raises(type(exc)):
        atomic_write(target, boom)
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["a.bin"]

    with pytest.raises(type(exc)):
        atomic_write(tmp_path / "new.bin", boom)
    assert sorted(os.listdir(tmp_path)) == ["a.bin"]
    assert not any(n.endswith(".part") for n in os.listdir(tmp_path))


def test_temporary_name_is_hidden_part_file_in_destination_folder(tmp_path):
    seen = []
    atomic_write(tmp_path / "a.bin", lambda fh: seen.append(os.listdir(tmp_path)))
    (name,) = seen[0]
    assert name.startswith(".a.bin.") and name.endswith(".part")


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_permissions_follow_umask(tmp_path, mask, expected):
    old = os.umask(mask)
    try:
        assert umask_mode() == expected
        p = atomic_write(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (p.stat().st_mode & 0o777) == expected


def test_explicit_mode(tmp_path):
    p = atomic_write(tmp_path / "a.txt", "x", mode=0o640)
    assert (p.stat().st_mode & 0o777) == 0o640


def test_wrong_data_type_writes_nothing(tmp_path):
    with pytest.raises(TypeError, match="a.bin"):
        atomic_write(tmp_path / "a.bin", 3)
    assert list(tmp_path.iterdir()) == []


def test_sha256_file_matches_hashlib(tmp_path):
    content = b"ivfuse" * 400_000  # more than one 1 MiB chunk
    p = tmp_path / "w.bin"
    p.write_bytes(content)
    assert sha256_file(p) == hashlib.sha256(content).hexdigest()
    p.write_bytes(b"abc")
    assert sha256_file(str(p)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
