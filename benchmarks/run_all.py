"""Every benchmark on whatever device is present, as one Markdown report.

    python benchmarks/run_all.py            # prints the report, writes benchmarks/results/<device>.md
    python benchmarks/run_all.py --quick    # small sizes (CI)

The report has three tables, each with its same-run baseline:

1. the losses at 8,192 views (dim 128): each path's time against the
   matmul floor, and the issue targets' ratios (hard loss / InfoNCE,
   blocked / dense), from `loss_benchmark.py`. On an accelerator the paths
   run under XLA, as Keras compiles them there by default; on a CPU both
   ways;
2. the blocked InfoNCE at 65,536 and 262,144 views: time against the floor
   and peak memory (the GPU allocator's peak on a GPU, resident memory on a
   CPU, where 262,144 views run only with `--largest`), under XLA and, on a
   CPU, without;
3. training images/s of `ContrastiveModel.fit` (two views, InfoNCE) against
   a supervised `fit` of the same encoder, for the small CNN and ResNet-18,
   from `throughput_benchmark.py`.
"""

import argparse
import os
import pathlib
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loss_benchmark  # noqa: E402
import tensorflow as tf  # noqa: E402
import throughput_benchmark  # noqa: E402

LOSS_PATHS = ["info_nce", "info_nce_blocked", "hard_k4095", "info_nce_masked"]


def device_name():
    """"gpu", "tpu" or "cpu", and a description of the device."""
    for kind in ("TPU", "GPU"):
        devices = tf.config.list_physical_devices(kind)
        if devices:
            details = tf.config.experimental.get_device_details(devices[0])
            return kind.lower(), details.get("device_name", kind)
    return "cpu", f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def loss_paths(accelerator):
    if accelerator:
        return [f"{path}_xla" for path in LOSS_PATHS]
    return [variant for path in LOSS_PATHS for variant in (path, f"{path}_xla")]


def ratio_lines(rows):
    """hard / InfoNCE and blocked / dense for each XLA setting measured, as
    the quotient of the two paths' times and as the quotient of their
    times against the floor, each path's timed in turns with its own
    process's floor (a slow stretch of the machine that lasts a whole
    subprocess moves the first, not the second)."""
    measured = {row["path"]: row for row in rows if "error" not in row}
    lines = ["| ratio | times | against the floor |", "|---|---|---|"]
    for suffix in ("", "_xla"):
        dense = measured.get(f"info_nce{suffix}")
        for path, label in [("hard_k4095", "hard (K = 4095) / InfoNCE"), ("info_nce_blocked", "blocked / dense")]:
            other = measured.get(f"{path}{suffix}")
            if dense and other:
                lines.append(
                    f"| {label}{' (XLA)' if suffix else ''} | {other['loss_ms'] / dense['loss_ms']:.2f} | "
                    f"{other['ratio'] / dense['ratio']:.2f} |"
                )
    return lines


def report(quick, largest, repeats):
    kind, description = device_name()
    accelerator = kind != "cpu"
    loss_samples = 256 if quick else 4096
    rows = [loss_benchmark.run_in_subprocess(path, loss_samples, repeats) for path in loss_paths(accelerator)]
    blocked_samples = [1024] if quick else [32768] + ([131072] if accelerator or largest else [])
    blocked_paths = ["info_nce_blocked_xla"] + ([] if accelerator else ["info_nce_blocked"])
    blocked_rows = [
        loss_benchmark.run_in_subprocess(path, samples, 1)
        for samples in blocked_samples
        for path in blocked_paths
    ]
    encoders = ["small_cnn"] if quick else list(throughput_benchmark.ENCODERS)
    batch_size, steps, rounds = (32, 4, 2) if quick else (256, 5, 3)
    lines = [
        f"# Benchmarks on {kind.upper()}: {description}",
        "",
        f"TensorFlow {tf.__version__}, `python benchmarks/run_all.py{' --quick' if quick else ''}`, "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        f"## Losses at {2 * loss_samples} views",
        "",
        *loss_benchmark.table_lines(rows),
        "",
        *ratio_lines(rows),
        "",
        "## Blocked InfoNCE, memory",
        "",
        *loss_benchmark.table_lines(blocked_rows),
        "",
        "## Training throughput",
        "",
        *throughput_benchmark.table_lines(encoders, batch_size, steps, rounds),
    ]
    return kind, "\n".join(lines) + "\n", any("error" in row for row in rows + blocked_rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (CI)")
    parser.add_argument("--largest", action="store_true", help="also 262,144 views on a CPU")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--output", default=None, help="report file (default benchmarks/results/<device>.md)")
    args = parser.parse_args()
    kind, text, failed = report(args.quick, args.largest, args.repeats or (2 if args.quick else 3))
    print(text)
    output = pathlib.Path(args.output or HERE / "results" / f"{kind}{'_quick' if args.quick else ''}.md")
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, output)  # atomic: a reader never sees half a report
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
