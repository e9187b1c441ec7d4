"""CNN inference runtimes side by side: Keras (TensorFlow), ONNX Runtime and LiteRT running
EfficientNet-Lite0's feature extractor (a preprocessed 224x224 batch -> 1280-d pooled features).

    .venv/bin/python bench/bench_inference.py [--images 320] [--repeats 3] [--busy 2]
        [--runtimes keras,onnxruntime,onnxruntime_nospin,litert] [--workdir DIR] [--out FILE]

Converts the Keras model once (ONNX with Keras' exporter, TFLite with TFLiteConverter),
computes the Keras features of the first ``--images`` photos of
../shared/datasets/fashion-small-dev, then measures each runtime in a fresh process of its
own, so memory and start-up are the runtime's alone: import + load time, resident memory
after loading and after 100 single-image inferences, images/s at batch 1 and 32, and the
largest difference to the Keras features. ``--busy N`` keeps N spinning processes running
meanwhile, as other workers would on a shared machine. Only LiteRT is in requirements.txt:
a runtime whose package is missing (onnxruntime; ONNX export needs tf2onnx and onnx) is
listed as such. Prints a table and writes JSON (default var/bench/bench_inference.json).
"""

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import DATASETS, ROOT, log, rounded

# onnxruntime_nospin: ONNX Runtime with its threads sleeping instead of spinning between
# operators, which matters when other processes want the cores (see --busy).
RUNTIMES = ("keras", "onnxruntime", "onnxruntime_nospin", "litert")
# What each runtime needs installed in a process that only runs the model.
PACKAGES = {
    "keras": ("tensorflow-cpu", "keras"),
    "onnxruntime": ("onnxruntime",),
    "onnxruntime_nospin": ("onnxruntime",),
    "litert": ("ai-edge-litert",),
}
SINGLE_INFERENCES = 100
BATCH = 32
THREADS = os.cpu_count()


def rss_mb():
    """Resident and peak resident memory of this process (MB)."""
    status = Path("/proc/self/status").read_text()
    values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return tuple(int(values[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))


def installed_mb(package):
    """Installed size of a distribution's own files (MB), or None when not installed."""
    try:
        files = importlib.metadata.distribution(package).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    return sum(Path(file.locate()).stat().st_size for file in files if Path(file.locate()).is_file()) / 1e6


# --- a child process: one runtime, measured from a cold start --------------------------


def load_runtime(name, workdir):
    """Import the runtime and load the model; returns ``run(batch) -> features``."""
    if name == "keras":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        from recommender.embedding import efficientnet_lite

        model = efficientnet_lite.load_efficientnet_lite0(cache_dir=workdir / "models")

        # The serving path before this comparison: a traced graph, as Embedder runs it.
        @tf.function
        def features(batch):
            return model(batch, training=False)

        return lambda batch: features(batch).numpy()
    if name.startswith("onnxruntime"):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = THREADS
        if name == "onnxruntime_nospin":
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(
            str(workdir / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        input_name = session.get_inputs()[0].name
        return lambda batch: session.run(None, {input_name: batch})[0]
    if name == "litert":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(workdir / "model.tflite"), num_threads=THREADS)
        source, target = (
            interpreter.get_input_details()[0]["index"],
            interpreter.get_output_details()[0]["index"],
        )
        shape = [None]

        def run(batch):
            if shape[0] != batch.shape:  # re-planning memory only when the batch size changes
                interpreter.resize_tensor_input(source, batch.shape)
                interpreter.allocate_tensors()
                shape[0] = batch.shape
            interpreter.set_tensor(source, batch)
            interpreter.invoke()
            return interpreter.get_tensor(target)

        return run
    raise ValueError(name)


def measure(name, workdir, repeats):
    from recommender.embedding.efficientnet_lite import preprocess_input

    # Photos are read from a memory map, a few at a time, so the memory figures are the
    # runtime's and not the test data's.
    photos = np.load(workdir / "images.npy", mmap_mode="r")
    reference = np.load(workdir / "keras_features.npy")
    result = {"rss_before_import_mb": rss_mb()[0]}
    start = time.perf_counter()
    run = load_runtime(name, workdir)
    result["import_and_load_s"] = time.perf_counter() - start
    result["rss_after_load_mb"] = rss_mb()[0]

    def batch(start, size):
        return preprocess_input(np.asarray(photos[start : start + size], dtype=np.float32))

    start = time.perf_counter()
    run(batch(0, 1))
    result["first_inference_s"] = time.perf_counter() - start
    singles, times = [], []
    for index in range(SINGLE_INFERENCES):
        single = batch(index % len(photos), 1)
        start = time.perf_counter()
        singles.append(run(single)[0])
        times.append(time.perf_counter() - start)
    result["batch1_images_per_s"] = 1 / statistics.median(times)
    result["rss_after_100_singles_mb"] = rss_mb()[0]

    images = batch(0, len(photos))
    batch_rates, batched = [], None
    for _ in range(repeats):
        rows, start = [], time.perf_counter()
        for offset in range(0, len(images), BATCH):
            rows.append(run(images[offset : offset + BATCH]))
        batch_rates.append(len(images) / (time.perf_counter() - start))
        batched = np.concatenate(rows)
    result["batch32_images_per_s"] = statistics.median(batch_rates)
    result["rss_after_batches_mb"], result["peak_rss_mb"] = rss_mb()
    difference = max(
        float(np.abs(batched - reference).max()),
        float(np.abs(np.stack(singles) - reference[np.arange(SINGLE_INFERENCES) % len(photos)]).max()),
    )
    result["max_abs_diff"] = difference
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    return result


# --- the parent: conversion, reference features, one child per runtime -----------------


def convert(workdir, count):
    """Keras model, reference features and the converted files; returns timings and sizes."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from recommender.embedding import efficientnet_lite, prepare_image

    paths = sorted((DATASETS / "fashion-small-dev" / "images").glob("*.jpg"))[:count]
    if len(paths) < count:
        sys.exit(f"need {count} photos in {DATASETS / 'fashion-small-dev' / 'images'}, found {len(paths)}")
    images = np.stack([prepare_image(path) for path in paths])
    np.save(workdir / "images.npy", images)
    model = efficientnet_lite.load_efficientnet_lite0(cache_dir=workdir / "models")
    inputs = efficientnet_lite.preprocess_input(images.astype(np.float32))
    features = np.concatenate(
        [model(inputs[i : i + BATCH], training=False).numpy() for i in range(0, len(inputs), BATCH)]
    )
    np.save(workdir / "keras_features.npy", features)
    info = {"images": len(images), "feature_range": [float(features.min()), float(features.max())]}

    try:
        start = time.perf_counter()
        model.export(str(workdir / "model.onnx"), format="onnx", verbose=False)
        info["onnx_conversion_s"] = time.perf_counter() - start
        info["onnx_file_mb"] = (workdir / "model.onnx").stat().st_size / 1e6
    except ImportError as exc:  # tf2onnx or onnx missing
        info["onnx_conversion_error"] = str(exc)
    start = time.perf_counter()
    flat = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    (workdir / "model.tflite").write_bytes(flat)
    info["tflite_conversion_s"] = time.perf_counter() - start
    info["tflite_file_mb"] = len(flat) / 1e6
    return info


def run_child(name, workdir, repeats):
    process = subprocess.run(
        [sys.executable, __file__, "--child", name, "--workdir", str(workdir), "--repeats", str(repeats)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if process.returncode:
        return {"error": (process.stderr.strip().splitlines() or [f"exit code {process.returncode}"])[-1]}
    return json.loads(process.stdout.strip().splitlines()[-1])


def measure_all(names, workdir, repeats, conversion):
    results = {}
    for name in names:
        sizes = [installed_mb(package) for package in PACKAGES[name]]
        if None in sizes:
            results[name] = {"error": f"not installed ({', '.join(PACKAGES[name])})"}
        elif name.startswith("onnxruntime") and not (workdir / "model.onnx").exists():
            results[name] = {"error": conversion.get("onnx_conversion_error", "no ONNX file")}
        else:
            log(f"measuring {name}")
            load = os.getloadavg()[0]
            results[name] = {
                **run_child(name, workdir, repeats),
                "package_mb": sum(sizes),
                "load_average": load,
            }
    return results


def table(results):
    columns = [
        ("runtime", "runtime", "{}"),
        ("max_abs_diff", "max|diff|", "{:.2e}"),
        ("batch1_images_per_s", "img/s b1", "{:.1f}"),
        ("batch32_images_per_s", "img/s b32", "{:.1f}"),
        ("rss_after_load_mb", "RSS load MB", "{:.0f}"),
        ("rss_after_100_singles_mb", "RSS 100x1 MB", "{:.0f}"),
        ("import_and_load_s", "import+load s", "{:.2f}"),
        ("first_inference_s", "1st run s", "{:.2f}"),
        ("package_mb", "package MB", "{:.0f}"),
        ("load_average", "load", "{:.1f}"),
    ]
    rows = [[title for _, title, _ in columns]]
    failed = []
    for name, row in results.items():
        if "error" in row:
            failed.append(f"{name}: {row['error']}")
            continue
        rows.append(
            [
                fmt.format(row.get(key, name)) if row.get(key, name) is not None else "-"
                for key, _, fmt in columns
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines + failed)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=320, help="catalogue photos to compare on")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the photos at batch 32")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "bench_inference.json")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="which to measure (comma-separated)")
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        help="keep N other processes spinning while measuring (a shared machine)",
    )
    parser.add_argument("--child", choices=RUNTIMES, help=argparse.SUPPRESS)
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the converted models and Keras features here; later runs reuse them",
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.workdir, args.repeats)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        saved = workdir / "conversion.json"
        if saved.exists() and json.loads(saved.read_text())["images"] == args.images:
            conversion = json.loads(saved.read_text())
        else:
            log(f"converting the model and embedding {args.images} photos with Keras")
            conversion = convert(workdir, args.images)
            saved.write_text(json.dumps(conversion))
        report = {"threads": THREADS, "busy_processes": args.busy, "conversion": conversion}
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
        try:
            report["runtimes"] = results = measure_all(
                args.runtimes.split(","), workdir, args.repeats, conversion
            )
        finally:
            for process in busy:
                process.kill()
                process.wait()
    print(table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    output = rounded(report)
    for name, row in results.items():  # far below rounding's 4 places
        if "max_abs_diff" in row:
            output["runtimes"][name]["max_abs_diff"] = float(f"{row['max_abs_diff']:.3g}")
    args.out.write_text(json.dumps(output, indent=2) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
