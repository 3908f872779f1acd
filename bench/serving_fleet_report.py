"""Tables and the plot of bench/serving_fleet.py, from its results JSON (so `--replot`
redraws them without measuring)."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("bench.serving_fleet")

BENCH_DIR = Path(__file__).resolve().parent
PLOT = BENCH_DIR / "serving_fleet.png"
TABLE = BENCH_DIR / "out" / "serving-fleet-table.md"
COLORS = {"leastconn": "C0", "roundrobin": "C1", "random2": "C2", "reuseport": "C3"}


def report(results: dict) -> None:
    markdown = table(results)
    TABLE.write_text(markdown + "\n")
    plot(results)
    log.info("\n%s\nplot: %s", markdown, PLOT)


def _load(point: dict) -> str:
    bursty = " bursty" if point.get("arrivals", "poisson") != "poisson" else ""
    return f"{100 * point['load']:.0f}%{bursty}"


def _poisson(points: list[dict]) -> list[dict]:
    return [p for p in points if p.get("arrivals", "poisson") == "poisson"]


def _rate(value: float | None) -> str:
    return "none" if value is None else f"{value:,.0f}/s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _latencies(point: dict) -> str:
    return f"{_ms(point['p50_ms'])} / {_ms(point['p99_ms'])} / {_ms(point['p999_ms'])}"


def _replicas(point: dict, slow: str) -> list[str]:
    """Replica names, the slow one last and starred in tables."""
    names = sorted(point["share"])
    return [name for name in names if name != slow] + [name for name in names if name == slow]


def _per_replica(point: dict, key: str, slow: str, percent: bool) -> str:
    cells = []
    for name in _replicas(point, slow):
        value = point[key][name]
        text = "-" if value is None else (f"{100 * value:.0f}%" if percent else f"{value:.1f}")
        cells.append(f"{name}{'*' if name == slow else ''} {text}")
    return ", ".join(cells)


def slow_name(results: dict, policy: str) -> str:
    return "slow" if policy == "reuseport" else results["handicap"]["replica"]


def table(results: dict) -> str:
    fleet, single = results["fleet"], results["single"]
    handicap = results["handicap"]
    lines = [f"Model: {results['model']}; slow replica (*) held to {handicap['cpus']:g} CPUs; "
             f"SLO {results['slo_ms']:g} ms; started {results['started_utc']}, "
             f"{results['minutes']} min.", "",
             f"Capacity (most 200s/s of a ramp step that kept up; in brackets, of one "
             f"that also met the SLO): fleet under leastconn "
             f"**{fleet['capacity']['capacity_rps']:,.0f}/s** "
             f"({_rate(fleet['capacity'].get('slo_capacity_rps'))}), one server "
             f"({single['default']}) **{single['capacity']['capacity_rps']:,.0f}/s** "
             f"({_rate(single['capacity'].get('slo_capacity_rps'))}).", "",
             "| load | policy | offered/s | p50 / p99 / p99.9 (ms) | slow replica's p99 (ms) "
             "| goodput <= SLO | 503s | share of 200s | mean batch (rows) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for point in fleet["policies"]:
        slow = slow_name(results, point["policy"])
        slow_p99 = point["served_by"].get(slow, {}).get("p99_ms")  # behind HAProxy only
        lines.append(f"| {_load(point)} | {point['policy']} | "
                     f"{point['offered_rps']:,.0f} | {_latencies(point)} | {_ms(slow_p99)} | "
                     f"{100 * point['good_share']:.1f}% | {100 * point['rate_503']:.1f}% | "
                     f"{_per_replica(point, 'share', slow, True)} | "
                     f"{_per_replica(point, 'mean_batch', slow, False)} |")
    lines += ["", f"Priorities ({100 * results['high_share']:.0f}% of requests high, the rest "
              "low; `none`: the same mix without the header):", "",
              "| system | load | mode | offered/s | high: p50 / p99 / p99.9 (ms) | low: p50 / p99 "
              "/ p99.9 (ms) | goodput <= SLO | 503s |", "|---|---|---|---|---|---|---|---|"]
    for system, points in (("fleet, leastconn", fleet["priorities"]),
                           (f"one server ({single['default']})", single["priorities"])):
        for point in points:
            high, low = point["templates"]["high"], point["templates"]["low"]
            lines.append(f"| {system} | {100 * point['load']:.0f}% | {point['mode']} | "
                         f"{point['offered_rps']:,.0f} | {_latencies(high)} | "
                         f"{_latencies(low)} | {100 * point['good_share']:.1f}% | "
                         f"{100 * point['rate_503']:.1f}% |")
    lines += ["", *sweep_lines(single)]
    before, after = results["load_average"]["before"][0], results["load_average"]["after"][0]
    lines.append(f"\n1-minute load average before / after: {before:.1f} / {after:.1f}")
    return "\n".join(lines)


def sweep_lines(single: dict) -> list[str]:
    """The latency target against the fixed delays: a row per load and configuration, and
    the goodput each summed over the Poisson loads."""
    lines = ["Latency target against fixed batch delays (single servers, same loads):", "",
             "| load | config | offered/s | p50 / p99 / p99.9 (ms) | goodput <= SLO | "
             "mean batch |", "|---|---|---|---|---|---|"]
    order = single["configs"]
    for point in sorted(single["points"], key=lambda p: (p.get("arrivals", "poisson") != "poisson",
                                                          p["load"], order.index(p["config"]))):
        batch = point["mean_batch"].get("server")
        lines.append(f"| {_load(point)} | {point['config']} | "
                     f"{point['offered_rps']:,.0f} | {_latencies(point)} | "
                     f"{100 * point['good_share']:.1f}% | {_ms(batch)} |")
    totals = sweep_totals(_poisson(single["points"]))
    fixed = {name: good for name, good in totals.items() if name.startswith("fixed")}
    best, worst = max(fixed, key=fixed.get), min(fixed, key=fixed.get)
    summed = ", ".join(f"{name} {good:,.0f}" + (" (best fixed)" if name == best else
                                                 " (worst fixed)" if name == worst else "")
                       for name, good in totals.items())
    return [*lines, "", "Goodput summed over the Poisson sweep (200s within the SLO per "
            f"second, all loads): {summed}"]


def sweep_report(results: dict) -> None:
    """Print the single-server sweep of `python -m bench.serving_fleet --sweep`."""
    single = results["single"]
    before, after = results["load_average"]["before"][0], results["load_average"]["after"][0]
    print("\n".join([
        f"Model: {results['model']}; SLO {results['slo_ms']:g} ms; started "
        f"{results['started_utc']}, {results['minutes']} min; 1-minute load average before / "
        f"after: {before:.1f} / {after:.1f}.", "",
        f"Capacity of one server ({single['default']}): "
        f"**{single['capacity']['capacity_rps']:,.0f}/s**.", "", *sweep_lines(single)]))


def sweep_totals(points: list[dict]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for point in points:
        totals[point["config"]] = totals.get(point["config"], 0.0) + point["goodput_rps"]
    return totals


def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fleet, single = results["fleet"], results["single"]
    figure, axes = plt.subplots(2, 3, figsize=(17, 9))
    for policy, color in COLORS.items():
        series = [p for p in _poisson(fleet["policies"]) if p["policy"] == policy]
        loads = [100 * p["load"] for p in series]
        slow = slow_name(results, policy)
        axes[0, 0].plot(loads, [p["p99_ms"] or float("nan") for p in series], "o-",
                        color=color, label=f"{policy} p99")
        axes[0, 0].plot(loads, [p["p999_ms"] or float("nan") for p in series], "x--",
                        color=color, alpha=0.5, label=f"{policy} p99.9")
        axes[0, 1].plot(loads, [100 * p["good_share"] for p in series], "o-", color=color,
                        label=policy)
        axes[0, 2].plot(loads, [100 * p["share"].get(slow, float("nan")) for p in series],
                        "o-", color=color, label=policy)
    replicas = len(fleet["policies"][0]["share"])
    axes[0, 0].axhline(results["slo_ms"], color="r", ls=":", label="SLO")
    axes[0, 0].set(yscale="log", xlabel="load (% of the fleet's capacity)", ylabel="ms",
                   title="Latency of the 200s by policy")
    axes[0, 1].set(xlabel="load (% of capacity)", ylabel="% of requests",
                   title=f"Goodput: 200s within {results['slo_ms']:g} ms")
    axes[0, 2].axhline(100 / replicas, color="k", ls=":", label="equal share")
    axes[0, 2].set(xlabel="load (% of capacity)", ylabel="% of the 200s",
                   title=f"The slow replica's share ({results['handicap']['cpus']:g} CPUs)")
    _plot_priorities(axes[1, 0], {"fleet": fleet["priorities"], "server": single["priorities"]})
    for name in dict.fromkeys(p["config"] for p in single["points"]):
        series = sorted((p for p in _poisson(single["points"]) if p["config"] == name),
                        key=lambda p: p["load"])
        offered = [p["offered_rps"] for p in series]
        style = "s-" if name.startswith("target") else "o--"
        axes[1, 1].plot(offered, [p["p99_ms"] or float("nan") for p in series], style,
                        label=name)
        axes[1, 2].plot(offered, [p["goodput_rps"] for p in series], style, label=name)
    axes[1, 1].axhline(results["slo_ms"], color="r", ls=":", label="SLO = target")
    axes[1, 1].set(yscale="log", xlabel="offered requests/s", ylabel="p99 (ms)",
                   title="Latency target vs fixed delays: p99")
    axes[1, 2].set(xlabel="offered requests/s", ylabel="200s within SLO per s",
                   title="Latency target vs fixed delays: goodput")
    for axis in axes.flat:
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(f"{results['model']}: {replicas} replicas, one slowed, open-loop Poisson "
                    "load from the same 2 cores")
    figure.tight_layout()
    figure.savefig(PLOT, dpi=100)


def _plot_priorities(axis, systems: dict[str, list[dict]]) -> None:
    groups = [(system, load) for system, points in systems.items()
              for load in sorted({p["load"] for p in points})]
    width = 0.2
    for offset, (mode, level) in enumerate((("priorities", "high"), ("none", "high"),
                                            ("priorities", "low"), ("none", "low"))):
        values = [next((p["templates"][level]["p99_ms"] or float("nan") for p in systems[system]
                        if p["mode"] == mode and p["load"] == load), float("nan"))
                  for system, load in groups]
        axis.bar([i + (offset - 1.5) * width for i in range(len(groups))], values, width,
                 label=f"{level} level, {'with' if mode == 'priorities' else 'no'} priorities")
    axis.set_xticks(range(len(groups)), [f"{system}\n{100 * load:.0f}%" for system, load in groups])
    axis.set(yscale="log", ylabel="p99 (ms)", title="Priorities: p99 of each level")
