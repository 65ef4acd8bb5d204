"""Bad arguments raise lowbit.Error (a ValueError and a RuntimeError) carrying lowbit's
message, which names the offending value."""
import numpy as np
import pytest

import lowbit
from conftest import weights


def test_error_type():
    assert issubclass(lowbit.Error, ValueError) and issubclass(lowbit.Error, RuntimeError)
    assert lowbit.Error.__module__ == "lowbit"


@pytest.mark.parametrize("array,match", [
    (np.ones((2, 256), np.complex64), "expected an array of real numbers, got dtype complex64"),
    ("weights", "expected an array of real numbers"),
    (np.float32(1.0), "got a scalar"),
    (np.ones((2, 100), np.float32), "Q4_K.*100"),
])
def test_quantize_bad_arrays(array, match):
    with pytest.raises(lowbit.Error, match=match):
        lowbit.quantize(array, "Q4_K")


def test_quantize_bad_values_and_importance():
    w = weights(3, 256)
    w[2, 17] = np.inf
    with pytest.raises(lowbit.Error, match=r"\[2, 17\]"):
        lowbit.quantize(w, "Q4_K")
    w = weights(3, 256)
    with pytest.raises(lowbit.Error, match=r"importance has shape \(5,\), expected one entry per column \(256,\)"):
        lowbit.quantize(w, "Q4_K", importance=np.ones(5))
    imp = np.ones(256, np.float32)
    imp[9] = -1
    with pytest.raises(lowbit.Error, match=r"importance\[9\]"):
        lowbit.quantize(w, "Q4_K", importance=imp)
    with pytest.raises(lowbit.Error, match="unknown format 'Q4'"):
        lowbit.quantize(w, "Q4")


def test_dequantize_bad_arguments():
    q = lowbit.quantize(weights(2, 256), "Q4_K")
    with pytest.raises(lowbit.Error, match="288 bytes for a 2 x 512 matrix, which needs 576"):
        lowbit.dequantize(q, "Q4_K", (2, 512))
    with pytest.raises(lowbit.Error, match="expected uint8 data, got dtype float32"):
        lowbit.dequantize(q.view(np.float32), "Q4_K", (2, 256))
    with pytest.raises(lowbit.Error, match="give the shape"):
        lowbit.dequantize(q.tobytes(), "Q4_K")
    with pytest.raises(lowbit.Error, match="not whole Q8_0 blocks"):
        lowbit.dequantize(q[:, :100], "Q8_0")
    with pytest.raises(lowbit.Error, match="bad shape"):
        lowbit.dequantize(q, "Q4_K", (-2, 256))
    with pytest.raises(lowbit.Error, match="bytes, a buffer or a uint8 array"):
        lowbit.dequantize(12345, "Q4_K", (2, 256))
    with pytest.raises(lowbit.Error, match="Q4_K.*100"):
        lowbit.dequantize(q, "Q4_K", (2, 100))


def test_hessian_and_gsq_bad_arguments():
    with pytest.raises(lowbit.Error):
        lowbit.Hessian(0)
    with pytest.raises(lowbit.Error, match="expected activations"):
        lowbit.Hessian(8).add(np.ones((2, 2, 8), np.float32))
    with pytest.raises(lowbit.Error, match="unknown GSQ search 'best'"):
        lowbit.GsqConfig(search="best")
    with pytest.raises(lowbit.Error, match="unknown GSQ scale storage 'fp8'"):
        lowbit.GsqConfig(scale_storage="fp8")
