"""gguf decode check: the gguf package's numpy dequantizers read lowbit's bytes
exactly as lowbit does.

For every lowbit format that gguf.quants.dequantize knows (by GGMLQuantizationType),
quantize synthetic weights with lowbit (three distributions, with and without an
importance vector, and scaled copies that push block scales into fp16's subnormal
range and towards its top: 8 cases of 16 x 2048), then dequantize the bytes with
lowbit and with gguf and require the float32 results to be equal bit for bit
(compared as uint32). Formats gguf cannot decode are listed as SKIP.

Run by hand (after building lowbit_interop_tool and running setup_venv.sh):
    ~/.cache/lowbit/venv/bin/python tests/interop/test_gguf_decode.py \\
        --tool build/tests/interop/lowbit_interop_tool [--formats Q4_K,Q6_K]
Exit status 0 when every row passes; a table and a failure summary are printed.
"""
import time

from gguf import GGMLQuantizationType
from gguf import quants as gguf_quants

from interop_common import Table, Tool, check_decode, decode_cases, parse_args, select_formats


def gguf_type(fmt):
    """(GGMLQuantizationType, "") for fmt, or (None, why gguf cannot decode it)."""
    try:
        qtype = GGMLQuantizationType(fmt.ggml_type)
    except ValueError:
        return None, f"gguf has no type id {fmt.ggml_type}"
    if qtype.name != fmt.name:
        return None, f"gguf calls type {fmt.ggml_type} {qtype.name}, lowbit {fmt.name}"
    if qtype in (GGMLQuantizationType.F32, GGMLQuantizationType.F16) or qtype in gguf_quants._type_traits:
        return qtype, ""
    return None, f"gguf has no numpy dequantizer for {fmt.name}"


def main():
    args = parse_args(__doc__)
    tool = Tool(args.tool)
    start = time.time()
    cases = decode_cases(tool)
    table = Table("lowbit bytes decoded by gguf.quants.dequantize vs lowbit::dequantize, bit for bit "
                  f"({len(cases)} cases per format)",
                  ["format", "decoder", "cases", "result"], [7, 22, 6, 0], key_columns=1)
    for fmt in select_formats(tool, args.formats):
        qtype, why = gguf_type(fmt)
        if qtype is None:
            table.row([fmt.name, "", ""], "SKIP", why)
            continue
        check_decode(table, tool, fmt, cases,
                     lambda data, rows, cols, q=qtype: gguf_quants.dequantize(data.reshape(rows, -1), q),
                     "gguf.quants.dequantize")
    print(f"\n({time.time() - start:.1f} s)")
    return table.finish()


if __name__ == "__main__":
    raise SystemExit(main())
