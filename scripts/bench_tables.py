"""Turns the console output of bench_quantize and bench_dequantize (run with
--benchmark_counters_tabular=true) into the markdown tables of docs/benchmarks.md.

    build/benchmarks/bench_quantize --benchmark_counters_tabular=true > q.txt
    build/benchmarks/bench_dequantize --benchmark_counters_tabular=true > d.txt
    python3 scripts/bench_tables.py q.txt d.txt
"""
import re
import sys

FORMATS = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K",
           "IQ4_NL", "IQ4_XS"]


def parse(path):
    out = {}
    for line in open(path):
        if not re.match(r"^(quantize|dequantize|ggml|stream)", line):
            continue
        parts = line.split()
        out[parts[0]] = [p for p in parts if re.match(r"^[\d.]+[GMk]?/s$", p)]
    return out


def mbs(v):
    m = re.match(r"([\d.]+)([GMk]?)/s", v)
    return float(m.group(1)) * {"G": 1e3, "M": 1.0, "k": 1e-3, "": 1e-6}[m.group(2)]


def main(qpath, dpath):
    q, d = parse(qpath), parse(dpath)

    def cell(table, name, idx=0, scale=1.0, fmt="{:.0f}"):
        v = table.get(name)
        return fmt.format(mbs(v[idx]) * scale) if v else "n/a"

    print("### Quantize (1024 x 4096 f32 input, MB/s of input)\n")
    print("| format | lowbit 1 thread | ggml 1 thread | lowbit imatrix | ggml imatrix | lowbit 2 threads | ggml 2 threads |")
    print("|---|---|---|---|---|---|---|")
    for f in FORMATS:
        k = f.lower().replace("_k", "_K")
        print(f"| {f} | {cell(q, f'quantize_row_{k}__scalar/threads:1/1/real_time')} "
              f"| {cell(q, f'ggml_quantize_{f}/threads:1/1/real_time')} "
              f"| {cell(q, f'quantize_row_{k}__scalar/imatrix/threads:1/1/real_time')} "
              f"| {cell(q, f'ggml_quantize_{f}/imatrix/threads:1/1/real_time')} "
              f"| {cell(q, f'quantize_row_{k}__scalar/threads:all/0/real_time')} "
              f"| {cell(q, f'ggml_quantize_{f}/threads:all/0/real_time')} |")
    print("\n### Dequantize (14336 x 4096, GB/s of f32 output)\n")
    print("| kernel | lowbit 1 thread | ggml 1 thread | lowbit 2 threads | ggml 2 threads |")
    print("|---|---|---|---|---|")
    gb = dict(scale=1e-3, fmt="{:.1f}")
    print(f"| streaming write ceiling | {cell(d, 'stream_write_ceiling/threads:1/1/real_time', **gb)} | "
          f"| {cell(d, 'stream_write_ceiling/threads:all/0/real_time', **gb)} | |")
    print(f"| streaming read ceiling (GB/s read) | {cell(d, 'stream_read_ceiling/threads:1/1/real_time', **gb)} | "
          f"| {cell(d, 'stream_read_ceiling/threads:all/0/real_time', **gb)} | |")
    for f in FORMATS:
        k = f.lower().replace("_k", "_K")
        print(f"| {f} | {cell(d, f'dequantize_row_{k}__scalar/threads:1/1/real_time', 1, **gb)} "
              f"| {cell(d, f'ggml_dequantize_{f}/threads:1/1/real_time', 1, **gb)} "
              f"| {cell(d, f'dequantize_row_{k}__scalar/threads:all/0/real_time', 1, **gb)} "
              f"| {cell(d, f'ggml_dequantize_{f}/threads:all/0/real_time', 1, **gb)} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
