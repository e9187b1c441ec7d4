"""Read PyTorch state dicts saved in the legacy (non-zip) format, without torch.

The file is a sequence of pickles (magic number, protocol version, system info, the state
dict whose tensors point at storages by persistent id, the list of storage keys) followed
by each storage's raw bytes. Pickles can run arbitrary code when loaded, so the unpickler
below only knows the handful of names a state dict needs and refuses everything else.
"""

import collections
import hashlib
import pickle
from dataclasses import dataclass

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


class UnsafeCheckpoint(pickle.UnpicklingError):
    """The weights file references something other than plain tensors."""


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass
class _Storage:
    key: str
    dtype: np.dtype
    size: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple
    stride: tuple


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
):
    if not isinstance(storage, _Storage):
        raise UnsafeCheckpoint(f"tensor built from {type(storage).__name__} instead of a storage")
    # The storage bytes come after the pickle, so tensors are materialised later.
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


# torch storage class name -> numpy dtype (little-endian, as the file says it is).
_STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickler that builds only OrderedDicts, tensor references and storage markers."""

    def __init__(self, file):
        super().__init__(file)
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(np.dtype(_STORAGE_DTYPES[name]))
        raise UnsafeCheckpoint(f"refusing to load {module}.{name}: a weights file may only contain tensors")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafeCheckpoint(f"unexpected persistent id in weights file: {pid!r}")
        _, storage_type, key, _location, size = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise UnsafeCheckpoint(f"unknown storage type in weights file: {storage_type!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise UnsafeCheckpoint("storage views are not supported in weights files")
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(str(key), storage_type.dtype, int(size))
        return storage


def file_fingerprint(path):
    """sha256 (hex) of a weights file: identifies exactly which weights produced a vector."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _load_restricted(file):
    return _StateDictUnpickler(file).load()


def read_legacy_state_dict(path):
    """Return the tensors of a legacy-format PyTorch ``state_dict`` as numpy arrays.

    Only tensors, OrderedDicts and primitive values are accepted; anything else in the
    file raises :class:`UnsafeCheckpoint` before it can run.
    """
    with open(path, "rb") as file:
        if _load_restricted(file) != LEGACY_MAGIC_NUMBER:
            raise ValueError(f"{path} is not a legacy PyTorch weights file (bad magic number)")
        if _load_restricted(file) != LEGACY_PROTOCOL_VERSION:
            raise ValueError(f"{path} uses an unsupported PyTorch serialisation version")
        system_info = _load_restricted(file)
        if not (isinstance(system_info, dict) and system_info.get("little_endian")):
            raise ValueError(f"{path} was not written on a little-endian machine")
        unpickler = _StateDictUnpickler(file)
        state = unpickler.load()
        if not isinstance(state, dict):
            raise ValueError(f"{path} does not hold a state dict")
        storage_keys = _load_restricted(file)

        data = {}
        for key in storage_keys:
            storage = unpickler.storages.get(key)
            if storage is None:
                raise ValueError(f"{path}: storage {key} is listed but no tensor uses it")
            (count,) = np.frombuffer(file.read(8), dtype="<i8")
            if count != storage.size:
                raise ValueError(f"{path}: storage {key} holds {count} values, expected {storage.size}")
            nbytes = int(count) * storage.dtype.itemsize
            raw = file.read(nbytes)
            if len(raw) != nbytes:
                raise ValueError(f"{path} is truncated (storage {key})")
            data[key] = np.frombuffer(raw, dtype=storage.dtype)

    arrays = {}
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise ValueError(f"{path}: entry {name!r} is not a tensor")
        arrays[name] = _materialise(value, data[value.storage.key])
    return arrays


def _materialise(ref, flat):
    if any(n == 0 for n in ref.shape):
        return np.zeros(ref.shape, dtype=flat.dtype.newbyteorder("="))
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride, strict=True))
    if ref.offset < 0 or any(s < 0 for s in ref.stride) or last >= flat.size:
        raise ValueError("a tensor in the weights file extends past the end of its storage")
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :],
        shape=ref.shape,
        strides=tuple(s * flat.dtype.itemsize for s in ref.stride),
        writeable=False,
    )
    # Copy into native byte order and contiguous layout so callers own plain arrays.
    return np.ascontiguousarray(view, dtype=flat.dtype.newbyteorder("="))
