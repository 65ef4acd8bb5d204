"""lowbit: low-bit quantization of LLM weights, over numpy.

GGML block formats byte for byte (the bytes go into GGUF files and llama.cpp as they
are), group-scaling quantization (GSQ), GPTQ, GGUF reading and whole-model quantization.
Arrays go in and out without copies where the layout allows: float32 arrays with
contiguous rows are read in place, results are numpy arrays written in place, GSQ
results and GGUF tensor data are read-only views of the library's memory.

    >>> import numpy as np, lowbit
    >>> w = np.random.default_rng(0).standard_normal((64, 256), dtype=np.float32)
    >>> q = lowbit.quantize(w, "Q4_K")
    >>> q.shape, q.dtype
    ((64, 144), dtype('uint8'))
    >>> lowbit.dequantize(q, "Q4_K", w.shape).shape
    (64, 256)

Every refused input raises :class:`lowbit.Error` (a ValueError and a RuntimeError)
with lowbit's message naming the value.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _lowbit
from ._lowbit import Error, GGUFFile, GGUFTensor, GsqConfig, GsqResult, Hessian

__version__: str = _lowbit.__version__

__all__ = [
    "Error", "FormatInfo", "GGUFFile", "GGUFTensor", "GsqConfig", "GsqResult", "Hessian",
    "dequantize", "format_info", "formats", "gptq", "gsq_quantize", "num_threads",
    "quantize", "quantize_model", "quantized_size", "set_log_level", "set_num_threads",
]

FormatLike = Union[str, int, "FormatInfo"]
PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class FormatInfo:
    """A storage format. ``block_size`` and ``type_size`` have the meaning of gguf's
    ``GGML_QUANT_SIZES`` (elements and bytes per block)."""

    name: str
    ggml_type: int
    block_size: int
    type_size: int
    bits_per_weight: float
    quantized: bool
    activation_only: bool  # Q8_1 / Q8_K: made on the fly, not stored in models


def formats() -> List[FormatInfo]:
    """Every format lowbit implements, in display order."""
    return [FormatInfo(*t) for t in _lowbit.formats()]


def _format_key(fmt: FormatLike) -> Union[str, int]:
    if isinstance(fmt, FormatInfo):
        return fmt.name
    if isinstance(fmt, (str, int)) and not isinstance(fmt, bool):
        return fmt
    if hasattr(fmt, "name") and isinstance(getattr(fmt, "name"), str):  # e.g. gguf.GGMLQuantizationType
        return fmt.name
    raise Error(f"a format is a name such as 'Q4_K' or a GGML type id, not {type(fmt).__name__}")


def format_info(fmt: FormatLike) -> FormatInfo:
    """The format called ``fmt`` (case-insensitive name, GGML type id or FormatInfo)."""
    name = _lowbit.format_name(_format_key(fmt))
    return next(f for f in formats() if f.name == name)


def quantized_size(fmt: FormatLike, shape: Sequence[int]) -> int:
    """Bytes of a tensor of ``shape`` (numpy order, rows of ``shape[-1]`` elements)."""
    shape = tuple(int(d) for d in shape)
    if not shape:
        raise Error("quantized_size: the shape needs at least one dimension")
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    return rows * int(_lowbit.row_bytes(_format_key(fmt), shape[-1]))


def _float_matrix(a: Any, what: str) -> Tuple[np.ndarray, Tuple[int, ...]]:
    """``a`` as a 2-D float32 array with contiguous rows (a view when possible), and
    its original shape."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise Error(f"{what}: expected an array of real numbers, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise Error(f"{what}: expected an array with at least one dimension, got a scalar")
    shape = arr.shape
    if arr.dtype != np.float32:
        arr = arr.astype(np.float32)
    arr = arr.reshape(1, -1) if arr.ndim == 1 else arr.reshape(-1, shape[-1]) if arr.ndim > 2 else arr
    itemsize = arr.itemsize
    if arr.strides[1] != itemsize or arr.strides[0] % itemsize or (arr.shape[0] > 1 and arr.strides[0] < arr.shape[1] * itemsize):
        arr = np.ascontiguousarray(arr)
    return arr, shape


def _importance(v: Any, cols: int) -> Optional[np.ndarray]:
    if v is None:
        return None
    if isinstance(v, Hessian):
        v = v.importance()
    arr = np.asarray(v)
    if arr.dtype.kind not in "fiu":
        raise Error(f"importance: expected an array of real numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.ndim != 1 or arr.shape[0] != cols:
        raise Error(f"importance has shape {arr.shape}, expected one entry per column ({cols},)")
    return arr


def quantize(array: Any, format: FormatLike, importance: Any = None) -> np.ndarray:
    """Quantizes ``array`` (rows along the last axis) into GGML blocks of ``format``.

    Returns a uint8 array shaped like ``array`` with the last dimension in bytes (the
    layout gguf's ``quantize`` returns and GGUF stores). ``importance`` is None or one
    non-negative weight per column (llama.cpp's imatrix, or a :class:`Hessian`). The row
    length must be a multiple of the block size; NaN/Inf are refused. float32 input with
    contiguous rows is read in place; other dtypes are converted first.
    """
    arr, shape = _float_matrix(array, "quantize")
    imp = _importance(importance, arr.shape[1])
    out = _lowbit.quantize(arr, _format_key(format), imp)
    return out.reshape(shape[:-1] + (out.shape[1],))


def dequantize(data: Any, format: FormatLike, shape: Optional[Sequence[int]] = None) -> np.ndarray:
    """Decodes GGML blocks of ``format`` to a float32 array of ``shape`` (numpy order).

    ``data``: bytes, a buffer or a uint8 array, read in place when contiguous. Without
    ``shape``, a uint8 array's own shape tells it (the last dimension in bytes, as
    :func:`quantize` returns).
    """
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise Error(f"dequantize: expected uint8 data, got dtype {data.dtype}")
        raw = data
    else:
        try:
            raw = np.frombuffer(data, dtype=np.uint8)
        except (TypeError, ValueError) as e:
            raise Error(f"dequantize: data must be bytes, a buffer or a uint8 array ({e})") from None
    key = _format_key(format)
    if shape is None:
        if not isinstance(data, np.ndarray) or data.ndim == 0:
            raise Error("dequantize: give the shape, or a uint8 array shaped like quantize()'s result")
        info = format_info(key)
        row = data.shape[-1]
        if row % info.type_size:
            raise Error(f"dequantize: a last dimension of {row} bytes is not whole {info.name} blocks "
                        f"({info.type_size} bytes each)")
        shape = tuple(data.shape[:-1]) + (row // info.type_size * info.block_size,)
    shape = tuple(int(d) for d in shape)
    if not shape or any(d < 0 for d in shape):
        raise Error(f"dequantize: bad shape {shape}")
    raw = np.ascontiguousarray(raw).reshape(-1)
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    out = _lowbit.dequantize(raw, key, rows, shape[-1])
    return out.reshape(shape)


def gsq_quantize(w: Any, bits: int = 4, group_size: int = 128, scheme: str = "asymmetric", search: str = "mse",
                 scale_storage: str = "fp16", double_quant: bool = False, importance: Any = None,
                 config: Optional[GsqConfig] = None, **advanced: Any) -> GsqResult:
    """Group-scaling quantization of ``w`` ([out x in]) into packed codes.

    Returns a :class:`GsqResult` whose ``qweight`` (uint32 [rows, words]: codes packed
    LSB-first along each row, AutoGPTQ's packing), ``scales``, ``zeros`` and ``mins``
    (float32/int32 [rows, groups]) are views of the result. Either pass a
    :class:`GsqConfig` as ``config`` or its fields as arguments (``scheme``: symmetric,
    asymmetric, asymmetric_float; ``search``: rtn, mse, importance, hqq; advanced:
    mse_norm, mse_grid, mse_max_shrink, hqq_iters). The importance search needs
    ``importance`` (one weight per column).
    """
    if config is None:
        config = GsqConfig(bits=bits, group_size=group_size, scheme=scheme, search=search,
                           scale_storage=scale_storage, double_quant=double_quant, **advanced)
    elif advanced:
        raise Error(f"gsq_quantize: give either config= or settings, not both ({', '.join(advanced)})")
    arr, shape = _float_matrix(w, "gsq_quantize")
    if len(shape) != 2:
        raise Error(f"gsq_quantize: expected a 2-D weight matrix, got shape {shape}")
    return _lowbit.gsq_quantize(arr, config, _importance(importance, arr.shape[1]))


def gptq(weight: Any, hessian: Union[Hessian, np.ndarray], target: Union[FormatLike, GsqConfig] = "Q4_K", *,
         act_order: bool = False, static_groups: bool = False, damp_percent: float = 0.01, block_size: int = 128,
         importance: Any = None, return_report: bool = False) -> Any:
    """GPTQ of ``weight`` ([out x in]) with the layer's Hessian.

    ``hessian``: a :class:`Hessian` fed with calibration activations, or a float array
    [in x in] (its upper triangle is read). ``target``: a GGML format name (the result is
    then uint8 blocks like :func:`quantize`'s, loadable by llama.cpp) or a
    :class:`GsqConfig` (the result is a :class:`GsqResult`; with ``act_order`` its
    ``g_idx`` maps columns to groups). ``importance`` defaults to diag(H) / 2. GGML
    targets with ``act_order`` need ``static_groups``. With ``return_report`` the result
    comes with a dict (damp_percent_used, damp_retries, dead_columns, perm).
    """
    arr, shape = _float_matrix(weight, "gptq")
    if len(shape) != 2:
        raise Error(f"gptq: expected a 2-D weight matrix, got shape {shape}")
    if not isinstance(hessian, Hessian):
        hessian = np.asarray(hessian)
        if hessian.dtype.kind not in "fiu":
            raise Error(f"gptq: the Hessian must be a lowbit.Hessian or a float array, got dtype {hessian.dtype}")
    imp = _importance(importance, arr.shape[1])
    if isinstance(target, GsqConfig):
        result, report = _lowbit.gptq_gsq(arr, hessian, target, act_order, static_groups, damp_percent, block_size, imp)
    else:
        result, report = _lowbit.gptq_ggml(arr, hessian, _format_key(target), act_order, static_groups, damp_percent,
                                           block_size, imp)
    return (result, report) if return_report else result


def _hessian_add(self: Hessian, x: Any, dtype: Optional[str] = None) -> None:
    """Adds a batch of activations [tokens x cols]: float arrays (float16 passed as raw
    fp16), or raw 16-bit values with ``dtype="bf16"`` / ``"f16"`` (uint16 arrays).
    NaN/Inf refuse the whole batch and leave the Hessian unchanged."""
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise Error(f"Hessian.add: expected activations [tokens x {self.cols}], got shape {arr.shape}")
    if dtype is not None:
        if dtype not in ("bf16", "f16"):
            raise Error(f"Hessian.add: dtype must be 'bf16' or 'f16', got {dtype!r}")
        if arr.dtype not in (np.uint16, np.int16, np.float16):
            raise Error(f"Hessian.add: dtype={dtype!r} takes raw 16-bit values (uint16), got {arr.dtype}")
        self._add_half(np.ascontiguousarray(arr).view(np.uint16), dtype == "bf16")
    elif arr.dtype == np.float16:
        self._add_half(np.ascontiguousarray(arr).view(np.uint16), False)
    else:
        arr, _ = _float_matrix(arr, "Hessian.add")
        self._add_f32(arr)


Hessian.add = _hessian_add  # type: ignore[attr-defined]


class _ProgressBar:
    """A tqdm-style bar on stderr: ``quantizing  42%|####      | 1.2G/2.9G [00:12<00:16, 101M/s]``."""

    def __init__(self, label: str, stream: Any = None, width: int = 30, min_interval: float = 0.1):
        self.label, self.stream, self.width, self.min_interval = label, stream or sys.stderr, width, min_interval
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = False

    @staticmethod
    def _si(n: float) -> str:
        for unit in ("", "k", "M", "G", "T"):
            if abs(n) < 1000:
                return f"{n:.3g}{unit}" if unit else f"{n:.0f}"
            n /= 1000
        return f"{n:.3g}P"

    @staticmethod
    def _clock(s: float) -> str:
        s = int(s)
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self.last < self.min_interval:
            return
        self.last = now
        elapsed = now - self.start
        frac = done / total if total else 1.0
        filled = frac * self.width
        full = int(filled)
        partial = " ▏▎▍▌▋▊▉"[int((filled - full) * 8)] if full < self.width else ""
        bar = ("█" * full + partial).ljust(self.width)
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else 0.0
        line = (f"\r{self.label} {frac * 100:3.0f}%|{bar}| {self._si(done)}/{self._si(total)} "
                f"[{self._clock(elapsed)}<{self._clock(eta)}, {self._si(rate)} weights/s]")
        self.stream.write(line)
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def quantize_model(input: PathLike, output: PathLike, type: str, imatrix: Optional[PathLike] = None, *,
                   method: str = "rtn", hessians: Optional[PathLike] = None, threads: int = 0,
                   progress: Union[bool, Callable[[int, int], Any]] = True) -> Dict[str, Any]:
    """Quantizes a GGUF model as ``lowbit quantize`` does (llama-quantize's per-tensor
    types for ``type``: "Q4_K_M", "Q8_0", ...; docs/cli.md).

    ``imatrix``: a llama.cpp importance matrix (GGUF or legacy .dat). ``method``: "rtn",
    "gsq" or "gptq" (which needs ``hessians``, a folder of ``<tensor>.hess`` files saved by
    :meth:`Hessian.save`). ``progress``: True for a bar on stderr, False for none, or a
    callable ``(done, total)`` (elements converted). An exception raised by the callback,
    or Ctrl-C, stops the work and is raised here; the output is written atomically at the
    end, so nothing is left at ``output`` then. Returns a summary: type, tensors (name,
    from, to, bytes in, bytes out), converted, fallbacks, elements, bytes_in, bytes_out.
    """
    bar = None
    if progress is True:
        bar = _ProgressBar("quantizing")
        callback: Optional[Callable[[int, int], Any]] = bar
    elif progress is False or progress is None:
        callback = None
    elif callable(progress):
        callback = progress
    else:
        raise Error(f"quantize_model: progress must be True, False or a callable, not {progress!r}")
    try:
        return _lowbit.quantize_model(os.fspath(input), os.fspath(output), type,
                                      None if imatrix is None else os.fspath(imatrix), method,
                                      None if hessians is None else os.fspath(hessians), threads, callback)
    finally:
        if bar is not None:
            bar.close()


def set_num_threads(threads: int) -> None:
    """Caps lowbit's worker threads (0: all cores). Results never depend on it."""
    _lowbit.set_num_threads(threads)


def num_threads() -> int:
    """lowbit's worker thread count."""
    return _lowbit.num_threads()


def set_log_level(level: str) -> None:
    """The library's log on stderr: "trace", "debug", "info", "warning", "error" or "off" (default)."""
    _lowbit.set_log_level(level)


def _tensor_getitem(self: GGUFFile, key: Union[str, int]) -> GGUFTensor:
    if isinstance(key, str):
        return self.tensor(key)
    return self.tensors[key]


def _tensor_contains(self: GGUFFile, name: object) -> bool:
    return any(t.name == name for t in self.tensors)


GGUFFile.__getitem__ = _tensor_getitem  # type: ignore[method-assign]
GGUFFile.__iter__ = lambda self: iter(self.tensors)  # type: ignore[method-assign]
GGUFFile.__contains__ = _tensor_contains  # type: ignore[method-assign]
