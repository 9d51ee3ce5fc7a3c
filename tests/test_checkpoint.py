"""Module.save / Module.load on hostile and broken files: checked before inflated."""

import io
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from arenagrad import nn


def npy(shape, descr="<f8", data=None):
    """The bytes of a .npy member: a version 1.0 header, then ``data`` (zeros by default)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    if data is None:
        data = bytes(np.dtype(descr).itemsize * int(np.prod(shape)))
    return buf.getvalue() + data


def write_npz(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, payload in members.items():
            z.writestr(name, payload)
    return path


def linear():
    return nn.Linear(2, 3, seed=0)  # weight (3, 2), bias (3,)


def snapshot(m):
    return [p.data for p in m.parameters()]


def good_members():
    return {"weight.npy": npy((3, 2)), "bias.npy": npy((3,))}


# ------------------------------------------------------------------ not an archive


@pytest.mark.parametrize("kind", ["npy", "random", "empty", "text"])
def test_not_an_archive_is_named_without_numpy_advice(tmp_path, kind):
    path = tmp_path / f"{kind}.ckpt"
    if kind == "npy":
        np.save(path.with_suffix(".npy"), np.zeros(3))
        path = path.with_suffix(".npy")
    else:
        path.write_bytes({"random": os.urandom(4096), "empty": b"", "text": b"hello\n"}[kind])
    m = linear()
    before = snapshot(m)
    with pytest.raises(ValueError) as info:
        m.load(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "not an arenagrad checkpoint (.npz archive)" in msg
    assert "allow_pickle" not in msg and "pickle" not in msg
    if kind == "npy":
        assert "single .npy array" in msg
    assert snapshot(m) == before


def test_object_arrays_are_refused_without_pickle_advice(tmp_path):
    m = linear()
    path = tmp_path / "pickled.npz"
    np.savez(path, **{k: v.astype(object) for k, v in m.state_dict().items()})
    with pytest.raises(ValueError) as info:
        linear().load(path)
    msg = str(info.value)
    assert str(path) in msg and "dtype object" in msg
    assert "allow_pickle" not in msg


@pytest.mark.parametrize("descr", ["|b1", "<c16", "|O", [("a", "<f8")]])
def test_dtypes_other_than_real_numbers_are_refused(tmp_path, descr):
    path = write_npz(tmp_path / "odd.npz", {"weight.npy": npy((3, 2), descr=descr, data=b""), "bias.npy": npy((3,))})
    with pytest.raises(ValueError, match="has dtype .*real numbers"):
        linear().load(path)


def test_integer_and_compressed_checkpoints_load(tmp_path):
    path = tmp_path / "ints.npz"
    np.savez_compressed(path, weight=np.arange(6).reshape(3, 2), bias=np.array([1, 2, 3], dtype=np.int32))
    m = linear()
    m.load(path)
    assert [v.data for row in m.weight for v in row] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert [v.data for v in m.bias] == [1.0, 2.0, 3.0]


# ------------------------------------------------------------- names, shapes, sizes


def test_member_names_are_checked_from_the_directory(tmp_path):
    path = write_npz(tmp_path / "names.npz", {"weight.npy": npy((3, 2)), "extra.npy": npy((1,))})
    with pytest.raises(ValueError) as info:
        linear().load(path)
    msg = str(info.value)
    assert str(path) in msg and "missing key(s) 'bias'" in msg and "unexpected key(s) 'extra'" in msg
    m = linear()
    keys = m.load(path, strict=False)
    assert keys.missing_keys == ["bias"] and keys.unexpected_keys == ["extra"]
    assert [v.data for row in m.weight for v in row] == [0.0] * 6


def test_unexpected_members_are_never_read_with_strict_false(tmp_path):
    # The unexpected member claims a billion elements: skipped, not even its header read.
    path = write_npz(tmp_path / "extra.npz", {**good_members(), "huge.npy": npy((10**9,), data=b"")})
    assert linear().load(path, strict=False).unexpected_keys == ["huge"]


def test_duplicate_members_are_refused(tmp_path):
    path = tmp_path / "dup.npz"
    with zipfile.ZipFile(path, "w") as z:
        for name, payload in good_members().items():
            z.writestr(name, payload)
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("bias.npy", npy((3,)))
    with pytest.raises(ValueError, match="stored twice"):
        linear().load(path)


def test_shape_mismatch_names_the_entry_and_both_shapes(tmp_path):
    path = write_npz(tmp_path / "shape.npz", {"weight.npy": npy((2, 3)), "bias.npy": npy((3,))})
    with pytest.raises(ValueError) as info:
        linear().load(path)
    msg = str(info.value)
    assert str(path) in msg and "'weight'" in msg and "(2, 3)" in msg and "(3, 2)" in msg


def test_headers_are_all_checked_before_any_array_is_read(tmp_path, monkeypatch):
    # weight is fine and comes first; bias is wrong: nothing may be read past a header.
    path = write_npz(tmp_path / "late.npz", {"weight.npy": npy((3, 2)), "bias.npy": npy((4,))})
    reads = []
    real = np.lib.format.read_array
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: reads.append(1) or real(*a, **k))
    with pytest.raises(ValueError, match="shape"):
        linear().load(path)
    assert reads == []
    linear().load(write_npz(tmp_path / "fine.npz", good_members()))
    assert len(reads) == 2


def test_declared_size_larger_than_the_header_implies_is_refused(tmp_path):
    # A correct header for bias (3,), then 20 MB of zeros that deflate to ~20 KB.
    padding = bytes(20 * 2**20)
    path = write_npz(
        tmp_path / "bomb.npz",
        {"weight.npy": npy((3, 2)), "bias.npy": npy((3,)) + padding},
        compression=zipfile.ZIP_DEFLATED,
    )
    assert path.stat().st_size < 200_000
    with pytest.raises(ValueError) as info:
        linear().load(path)
    msg = str(info.value)
    assert str(path) in msg and "'bias'" in msg and "declares" in msg


def test_declared_size_slightly_larger_or_smaller_is_refused(tmp_path):
    over = write_npz(tmp_path / "over.npz", {"weight.npy": npy((3, 2)), "bias.npy": npy((3,)) + b"\0" * 8})
    with pytest.raises(ValueError, match="zip bomb"):
        linear().load(over)
    short = write_npz(tmp_path / "short.npz", {"weight.npy": npy((3, 2)), "bias.npy": npy((3,))[:-8]})
    with pytest.raises(ValueError, match="truncated"):
        linear().load(short)


def test_a_billion_element_header_is_refused_in_bounded_memory(tmp_path):
    # The member's header claims 10**9 float64 (8 GB) with a payload of a few bytes: the
    # old np.load allocated the whole array before noticing. Under a 1 GiB address-space
    # limit, load must fail with a ValueError, quickly, without a MemoryError.
    path = write_npz(
        tmp_path / "huge.npz",
        {"weight.npy": npy((10**9,), data=b"\0" * 64), "bias.npy": npy((3,))},
        compression=zipfile.ZIP_DEFLATED,
    )
    script = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from arenagrad import nn
        try:
            nn.Linear(2, 3).load({str(path)!r})
        except ValueError as e:
            print("ValueError:", e)
            sys.exit(0)
        except MemoryError:
            print("MemoryError")
            sys.exit(3)
        sys.exit(4)
    """)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert str(path) in out and "(1000000000,)" in out and "the parameter has shape (3, 2)" in out
    assert "MemoryError" not in out and "allocate" not in out  # refused, not attempted


def test_corrupt_data_after_good_headers_is_a_value_error(tmp_path):
    m = linear()
    path = tmp_path / "good.npz"
    m.save(path)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("bias.npy")
    start = info.header_offset + 30 + len(info.filename) + 128  # inside the data, past the header
    raw[start : start + 8] = b"\xff" * 8
    path.write_bytes(bytes(raw))
    target = nn.Linear(2, 3, seed=9)
    before = snapshot(target)
    with pytest.raises(ValueError) as info:
        target.load(path)
    assert str(path) in str(info.value)
    assert snapshot(target) == before


def test_load_a_directory_or_nothing(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        linear().load(tmp_path)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(FileNotFoundError) as info:
        linear().load(tmp_path / "nope.npz")
    assert str(tmp_path / "nope.npz") in str(info.value)


# ------------------------------------------------------------------------- save


def test_save_to_a_missing_directory_names_the_target(tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "model.npz"
    with pytest.raises(FileNotFoundError) as info:
        linear().save(target)
    msg = str(info.value)
    assert str(target) in msg
    assert ".arenagrad-" not in msg and ".tmp" not in msg  # not the temp file
    assert info.value.filename == str(target)


def test_save_over_a_directory_is_refused_and_leaves_no_temp_file(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError) as info:
        linear().save(tmp_path / "d")
    assert str(tmp_path / "d") in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_save_load_round_trip_still_works(tmp_path):
    src = nn.MLP(2, [4, 3], seed=1)
    path = tmp_path / "m.ckpt"
    src.save(path)
    dst = nn.MLP(2, [4, 3], seed=2)
    dst.load(path)
    assert snapshot(dst) == snapshot(src)


def test_a_huge_header_length_is_refused_after_reading_a_few_kilobytes(tmp_path):
    import struct

    # A version 2.0 .npy whose header claims to be 2 GiB long, followed by 1 MB of spaces.
    member = b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b" " * 2**20
    path = write_npz(
        tmp_path / "header.npz", {"weight.npy": member, "bias.npy": npy((3,))}, compression=zipfile.ZIP_DEFLATED
    )
    with pytest.raises(ValueError) as info:
        linear().load(path)
    assert str(path) in str(info.value) and "'weight' is not a readable .npy array" in str(info.value)


def test_a_larger_foreign_layer_is_reported_by_shape(tmp_path):
    path = tmp_path / "big.npz"
    nn.Linear(2000, 3, seed=0).save(path)
    with pytest.raises(ValueError, match=r"'weight' has shape \(3, 2000\), the parameter has shape \(3, 2\)"):
        linear().load(path)
