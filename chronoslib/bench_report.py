"""Benchmark report: the performance targets and the README's performance table, from bench JSON.

Pure functions of the dict that ``chronoslib.bench`` measures (or a saved ``--out`` file), so a table can be
re-rendered without measuring again. Knows nothing about how the numbers were taken.
"""

from __future__ import annotations

from typing import Any

from .latency import SPEC_FIGURES

# Performance targets (this 2-core machine, single thread).
TARGETS = {
    "fit_spec_s": 4.0, "timeline_10k_s": 1.5, "timeline_10k_extra_mb": 100.0, "timeline_100k_s": 30.0,
    "timeline_1m_s": 300.0, "timeline_peak_mb": 4096.0, "approx_cost_ratio": 1.05, "live_p50_ms": 0.5,
    "live_p99_ms": 1.5, "batch_windows_per_s": 50_000.0, "registry_1m_query_ms": 5.0,
}


def target_table(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: name, target, measured value, met (None when not measured in this run)."""
    rows = []

    def add(name: str, target: float, value: float | None, unit: str, higher_is_better: bool = False,
            wall: float | None = None) -> None:
        met = None if value is None else (value >= target if higher_is_better else value <= target)
        rows.append({"name": name, "target": target, "value": value, "unit": unit, "met": met, "wall": wall})

    tl, ap = res["pseudo_timeline"]["exact"], res["pseudo_timeline"]["approx"]
    f = res["fit_spec"]
    add("fit, reference setting (30+20 epochs, 48 blocks), CPU s", TARGETS["fit_spec_s"], f["cpu_s"], "s",
        wall=f["median_s"])
    t10 = tl.get("10000", {})
    add("pseudo-timeline, 10k blocks (exact), CPU s", TARGETS["timeline_10k_s"], t10.get("cpu_s"), "s",
        wall=t10.get("median_s"))
    add("pseudo-timeline, 10k blocks, extra memory", TARGETS["timeline_10k_extra_mb"],
        tl.get("10000", {}).get("extra_mb"), "MB")
    for n, name, key in ((100_000, "100k", "timeline_100k_s"), (1_000_000, "1M", "timeline_1m_s")):
        row = ap.get(str(n), {})
        add(f"pseudo-timeline, {name} blocks (approx), CPU s", TARGETS[key], row.get("approx_cpu_s"), "s",
            wall=row.get("approx_s"))
    big = [v.get("approx_extra_mb") for k, v in ap.items() if int(k) >= 100_000]
    add("pseudo-timeline, peak extra memory at 100k-1M", TARGETS["timeline_peak_mb"], max(big) if big else None, "MB")
    ratios = [v["cost_ratio_approx_over_exact"] for v in ap.values() if "cost_ratio_approx_over_exact" in v]
    add("approx path cost / exact greedy (20k-50k, worst)", TARGETS["approx_cost_ratio"],
        max(ratios) if ratios else None, "x")
    lv = res["predict_live"]
    add("predict_live p50 (wall)", TARGETS["live_p50_ms"], lv["p50_ms"], "ms")
    add("predict_live p99 (wall)", TARGETS["live_p99_ms"], lv["p99_ms"], "ms")
    add("predict_live p99 (CPU time per call)", TARGETS["live_p99_ms"], lv["cpu_p99_ms"], "ms")
    if "cpu_p99_ms_block_median" in lv:
        add("predict_live p99 (CPU, median of per-500-call blocks)", TARGETS["live_p99_ms"],
            lv["cpu_p99_ms_block_median"], "ms")
    add("predict_batch throughput (CPU)", TARGETS["batch_windows_per_s"], res["predict_batch"]["windows_per_s"],
        "windows/s", higher_is_better=True)
    rl = res["registry_large"]
    add(f"predict_live p50 with a registry of {rl['registry_entries']:,}", TARGETS["registry_1m_query_ms"],
        rl["p50_ms"], "ms")
    if "cpu_p50_ms" in rl:
        add(f"predict_live p99 with a registry of {rl['registry_entries']:,} (CPU time per call)",
            TARGETS["registry_1m_query_ms"], rl["cpu_p99_ms"], "ms")
    return rows


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "not measured"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        s = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    else:
        s = f"{v:,}" if isinstance(v, int) else str(v)
    return f"{s} {unit}".strip()


def _batch_notes(bt: dict[str, Any]) -> str:
    if "two_threads" not in bt:
        return ""
    return (f"; chunk {bt['chunk']}; two threads {_fmt(bt['two_threads']['windows_per_s_wall'], 'windows/s')} wall; "
            f"old chunk 8192 {_fmt(bt['chunk_8192']['windows_per_s'], 'windows/s')} CPU; "
            + (f"opt-in bf16 encoder {_fmt(bt['bf16']['windows_per_s'], 'windows/s')} CPU (top-1 neighbour as fp32 "
               f"in {bt['bf16']['same_top1_as_fp32']:.1%}); " if "bf16" in bt else "") +
            f"{bt['flops_per_window'] / 1e6:.1f} MFLOP per window")


def _registry_notes(rl: dict[str, Any]) -> tuple[str, str]:
    """(label suffix, measured suffix) of the large-registry row: index settings, CPU time, exact scan, recall."""
    if "index" not in rl:
        return "", ""
    ix, ex, rec = rl["index"], rl["exact"], rl["recall"]
    label = f" (IVF index: {ix['cells']:,} cells, nprobe {ix['nprobe']})"
    r = rec["by_nprobe"].get(str(ix["nprobe"]), {})
    text = (f"; {_fmt(rl['cpu_p50_ms'], 'ms')} / {_fmt(rl['cpu_p99_ms'], 'ms')} CPU; recall@{rec['k']} "
            f"{_fmt(r.get('recall_at_k'))} vs exact; exact scan p50 {_fmt(ex['p50_ms'], 'ms')} wall, "
            f"{_fmt(ex['cpu_p50_ms'], 'ms')} CPU; index build {_fmt(ix['build_cpu_s'], 's')} CPU")
    return label, text


def _recall_table(rl: dict[str, Any]) -> list[str]:
    if "recall" not in rl:
        return []
    rec = rl["recall"]
    lines = ["", f"IVF recall on a registry of {rl['registry_entries']:,} regime-structured latents "
             f"({rl['index']['cells']:,} cells, median {rl['index']['cell_size_median']:.0f} entries per cell), "
             f"{rec['queries']} queries from {rec['queries_from']}; recall@{rec['k']} = share of the exact SPD top-"
             f"{rec['k']} found:", "", "| nprobe | recall@k | top-1 equal | query CPU ms |", "|---|---|---|---|"]
    for npb, row in rec["by_nprobe"].items():
        lines.append(f"| {npb} | {row['recall_at_k']:.3f} | {row['top1']:.3f} | {row['query_cpu_ms']:.2f} |")
    return lines


def to_markdown(res: dict[str, Any]) -> str:
    """The README performance section, generated from a bench JSON document (with the ordering section's tables
    when it ran; only those for ``bench --only orderings``)."""
    from .bench_orderings import to_markdown as orderings_markdown

    m = res["meta"]
    if "fit_spec" not in res:
        return orderings_markdown(res["orderings"])
    f, lv, bt, rl = res["fit_spec"], res["predict_live"], res["predict_batch"], res["registry_large"]
    tl = res["pseudo_timeline"]
    lines = [
        f"Measured with `python -m chronoslib bench{' --quick' if m['quick'] else ''}` on {m['cores']} shared CPU "
        f"cores, torch {m['torch']} single-threaded, {m['when']} (1-min load average {m.get('load_avg_1min', 0):.1f} "
        "while other jobs shared the cores). Compute stages show process CPU time with wall time in brackets; "
        "latencies are wall time per call. ChronosDefrag 0.1.0 reference figures: Apple M2 Pro, PyTorch 2.3.", "",
        "| Metric | ChronosDefrag 0.1.0 reference | ChronosDefrag |", "|---|---|---|",
        f"| Fit, reference setting (30 encoder + 20 predictor epochs, 48 blocks) | ~{f['spec_s']} s (encoder only) | "
        f"{_fmt(f['cpu_s'], 's')} ({_fmt(f['median_s'], 's')} wall, median of {f['runs']}) |",
    ]
    for n, row in tl["exact"].items():
        spec = f"~{SPEC_FIGURES['pseudo_timeline_48_blocks_ms']} ms" if n == "48" else "-"
        extra = (f", all-pairs {row['ratio_allpairs_over_fast']:.1f}x slower"
                 if "ratio_allpairs_over_fast" in row else "")
        lines.append(f"| Pseudo-timeline, {int(n):,} blocks (exact) | {spec} | {_fmt(row['cpu_s'] * 1e3, 'ms')} "
                     f"({_fmt(row['ms'], 'ms')}), +{_fmt(row['extra_mb'], 'MB')}{extra} |")
    for n, row in tl["approx"].items():
        q = (f", path cost {row['cost_ratio_approx_over_exact']:.3f}x exact greedy"
             if "cost_ratio_approx_over_exact" in row else "")
        smp = (f" (sampled RSS +{_fmt(row['approx_extra_mb_sampled'], 'MB')})"
               if "approx_extra_mb_sampled" in row else "")
        lines.append(f"| Pseudo-timeline, {int(n):,} blocks (approximate) | - | {_fmt(row['approx_cpu_s'], 's')} "
                     f"({_fmt(row['approx_s'], 's')}), +{_fmt(row['approx_extra_mb'], 'MB')}{smp}{q} |")
    lines += [
        f"| predict_live p50 / p99 | ~{lv['spec_mean_ms']} ms (mean) / ~{lv['spec_p99_ms']} ms | "
        f"{_fmt(lv['p50_ms'], 'ms')} / {_fmt(lv['p99_ms'], 'ms')} wall; {_fmt(lv['cpu_p50_ms'], 'ms')} / "
        f"{_fmt(lv['cpu_p99_ms'], 'ms')} CPU" + (f" (p99 per 500 calls, median of {lv['cpu_p99_blocks']} blocks: "
                                                f"{_fmt(lv['cpu_p99_ms_block_median'], 'ms')})"
                                                if "cpu_p99_ms_block_median" in lv else "") + " |",
        f"| Inference throughput (predict_live, one thread) | ~{lv['spec_qps']:.0f} QPS | "
        f"{_fmt(lv['qps'], 'QPS')} wall, {_fmt(lv['cpu_qps'], 'QPS')} CPU |",
        f"| predict_batch, {bt['windows']:,} windows | - | {_fmt(bt['windows_per_s'], 'windows/s')} CPU "
        f"({_fmt(bt['windows_per_s_wall'], 'windows/s')} wall){_batch_notes(bt)} |",
        f"| predict_live with a registry of {rl['registry_entries']:,}{_registry_notes(rl)[0]} | - | "
        f"p50 {_fmt(rl['p50_ms'], 'ms')}, p99 {_fmt(rl['p99_ms'], 'ms')} wall{_registry_notes(rl)[1]} |",
    ]
    for tr in res["training"].values():
        lines.append(f"| Encoder training, {tr['n_blocks']:,} blocks (one epoch, batch {tr['batch_size']}) | - | "
                     f"{_fmt(tr['blocks_per_s'], 'blocks/s')}, plain per-sample step "
                     f"{tr['ratio_plain_over_fast']:.1f}x slower |")
    lines.append(f"| Peak memory (whole benchmark process) | ~{SPEC_FIGURES['peak_memory_mb']:.0f} MB | "
                 f"{_fmt(res['peak_rss_mb'], 'MB')} |")
    gpu = res.get("gpu", {})
    lines.append(f"| GPU (bf16 autocast, batch 512) | - | "
                 f"{gpu.get('skipped') or _fmt(gpu.get('blocks_per_s'), 'blocks/s') + ' on ' + gpu['device']} |")
    lines += _recall_table(rl)
    lines += ["", "Targets (this 2-core machine, single thread):", "",
              "| Target | Goal | Measured | Met |", "|---|---|---|---|"]
    for t in res["targets"]:
        goal = ("≥ " if t["unit"] == "windows/s" else "≤ ") + _fmt(float(t["target"]), t["unit"])
        wall = f" ({_fmt(t['wall'], t['unit'])} wall)" if t.get("wall") is not None else ""
        lines.append(f"| {t['name']} | {goal} | {_fmt(t['value'], t['unit'])}{wall} | "
                     f"{'-' if t['met'] is None else 'yes' if t['met'] else '**no**'} |")
    if "orderings" in res:
        lines += ["", "Pseudo-timeline orderings (docs/defragmentation.md):", "", orderings_markdown(res["orderings"])]
    return "\n".join(lines)
