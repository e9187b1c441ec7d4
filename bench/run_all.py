"""`make bench`: every benchmark of bench/, one after the other, then a table of their
headline figures. Each one's JSON goes to ``--out`` (var/bench/<name>.json); a failing
benchmark is reported and the others still run. Timings never fail anything.

    .venv/bin/python bench/run_all.py [--quick] [--only pages,index] [--out var/bench]

``--quick`` runs each with short settings (a few minutes in all) to check they work;
the figures in docs/benchmarks.md come from full runs.
"""

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, log

# The dev sample's vectors, shared by the benchmarks that read them (computed once).
VECTORS = ROOT / "var" / "bench" / "vectors"


def _get(data, *path):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _pages(data):
    pages = data.get("pages", {})
    rows = {
        name: f"{figures['req_per_s']:.0f}/s p50 {figures['p50_ms']:.0f} ms p99 {figures['p99_ms']:.0f} ms"
        f" ({figures['share_of_reference']:.2f}x ref)"
        for name, figures in pages.items()
        if isinstance(figures, dict)
    }
    photo = data.get("photo_search", {})
    if "concurrent_4" in photo:
        rows["photo_search"] = (
            f"first {photo['first_search_ms']:.0f} ms; 4 uploaders p50 {photo['concurrent_4']['p50_ms']:.0f} ms"
            f" p99 {photo['concurrent_4']['p99_ms']:.0f} ms; RSS {max(photo['web_worker_rss_mb_after']):.0f} MB"
        )
    return rows


# name: (full-run arguments, --quick arguments, headline figures from its JSON)
BENCHMARKS = {
    "import": ([], ["--rows", "5000", "--images", "500"], lambda d: {"rows/s": d.get("rows_per_second")}),
    "embed": (
        [],
        ["--quick"],
        lambda d: {
            "overlapped / bare model": _get(d, "photo_files", "overlapped_over_bare"),
            "embed_products at 44,441 (s)": _get(
                d, "refresh_embed_products", "full_catalogue_seconds", "overlapped"
            ),
        },
    ),
    "inference": (
        [],
        ["--images", "64", "--repeats", "1"],
        lambda d: {name: row.get("images_per_second") for name, row in d.get("runtimes", {}).items()},
    ),
    "index": (
        ["--cache", str(VECTORS)],
        ["--quick", "--cache", str(VECTORS)],
        lambda d: {
            f"{space} build before / after (s)": (
                _get(d, space, "build_before_seconds"),
                _get(d, space, "build_after_seconds"),
            )
            for space in ("catalogue_default_space", "catalogue_trained_space")
        },
    ),
    "similar": (
        ["--cache", str(VECTORS)],
        [
            "--cache",
            str(VECTORS),
            "--n-trees",
            "10",
            "--search-k",
            "1500",
            "--scale-queries",
            "200",
            "--e2e-calls",
            "50",
        ],
        lambda d: {"e2e": _get(d, "end_to_end")},
    ),  # fmt: skip
    "photo_search": (
        [],
        ["--products", "60", "--repeats", "10"],
        lambda d: {"whole photo": d.get("whole_photo"), "parts": d.get("parts_ms")},
    ),
    "thumbnails": (
        [],
        ["--quick"],
        lambda d: {
            "photos/s (60x80)": _get(d, "sample", "photos_per_second"),
            "similar items 2x/full (2400x3200)": _get(d, "large", "similar_items", "ratio_2x_to_full"),
        },
    ),
    "freshness": (
        [],
        ["--quick"],
        lambda d: {"median s": d.get("median_seconds"), "max s": d.get("max_seconds")},
    ),
    "worker_embed": (
        [],
        ["--quick"],
        lambda d: {
            "products/s": d.get("products_per_second"),
            "embedded / searchable (s)": (d.get("embedded_seconds"), d.get("searchable_seconds")),
        },
    ),
    "pages": (["--cache", str(VECTORS)], ["--quick", "--cache", str(VECTORS)], _pages),
    "quality": (
        ["--cache", str(VECTORS)],
        ["--cache", str(VECTORS)],
        lambda d: {
            "catalogue P@5 (shipped weight)": _get(d, "catalogue", "shipped"),
            "shopper photos P@5": _get(d, "shopper_photos", "p_at_5_adults"),
        },
    ),
}


def run(name, arguments, out):
    script = ROOT / "bench" / f"bench_{name}.py"
    target = out / f"{name}.json"
    if name == "inference":  # it writes its own JSON file and prints a table
        arguments = [*arguments, "--out", str(target)]
    log(f"== {name}: {' '.join([script.name, *arguments])}")
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(script), *arguments], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    seconds = time.perf_counter() - started
    if result.returncode:
        return {"status": f"failed (exit {result.returncode})", "seconds": seconds}
    if name != "inference":  # the result is the last JSON object, at the start of a line
        starts = [match.start() for match in re.finditer(r"^\{", result.stdout, re.MULTILINE)]
        target.write_text(result.stdout[starts[-1] :] if starts else "{}")
    try:
        data = json.loads(target.read_text())
    except json.JSONDecodeError:
        return {"status": "printed no JSON", "seconds": seconds}
    return {"status": "ok", "seconds": seconds, "data": data}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated names: " + ",".join(BENCHMARKS))
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        sys.exit(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)
    VECTORS.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in names:
        full, quick, headline = BENCHMARKS[name]
        results[name] = run(name, quick if args.quick else full, args.out)
        if "data" in results[name]:
            try:
                results[name]["headline"] = headline(results[name].pop("data")) or {}
            except (KeyError, TypeError, ValueError) as exc:
                results[name]["headline"] = {"unreadable": str(exc)}
    print(f"{'benchmark':<14} {'status':<22} {'seconds':>8}  headline")
    for name, result in results.items():
        headline = result.get("headline") or {}
        lines = (
            [f"{key}: {value}" for key, value in headline.items()]
            if isinstance(headline, dict)
            else [headline]
        )
        print(f"{name:<14} {result['status']:<22} {result['seconds']:>8.0f}  {lines[0] if lines else ''}")
        for line in lines[1:]:
            print(f"{'':<47}{line}")
    (args.out / "summary.json").write_text(json.dumps(results, indent=2, default=str))
    log(f"JSON in {args.out}")


if __name__ == "__main__":
    main()
