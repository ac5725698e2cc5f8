"""The summary table printed at the end of a run (the JSON report has everything)."""

from __future__ import annotations

from typing import Any


def _ms(v: Any) -> str:
    return "-" if v is None else f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms"


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _cpu_line(ms: dict[str, float]) -> str:
    if not ms:
        return "-"
    outside = ms.get("bench", 0) + ms.get("mobile-money-sim", 0) + ms.get("smsc-sim", 0)
    return (f"{ms.get('platform_total', 0):.1f} ms of the platform's CPU, machine "
            f"{ms.get('machine_busy', 0):.1f} (services "
            + ", ".join(f"{k} {ms[k]:.1f}" for k in
                        ("clients", "loans", "payments", "notifications", "savings")
                        if k in ms)
            + f"; postgresql {ms.get('postgresql', 0):.1f} as a whole, kafka "
            f"{ms.get('kafka', 0):.1f}, load generator + simulators {outside:.1f}, "
            f"other {ms.get('other', 0):.1f})")


def summary_table(r: dict[str, Any]) -> str:
    ceiling = r["ceiling"]["commits_per_s"]
    lines = [f"Noria benchmark {r['started_at']} ({'quick' if r['quick'] else 'full'} run, "
             f"{r['machine']['cpus']} CPUs, git {r['machine']['git']})",
             f"ceiling: {ceiling:,.0f} commits/s (single-row INSERT, "
             f"{r['ceiling']['concurrency']} connections; "
             + ", ".join(f"c={x['concurrency']}: {x['commits_per_s']:,.0f}"
                         for x in r["ceiling_runs"]) + ")", ""]
    idle = r.get("idle_cpu_cores") or {}
    if idle:
        lines.insert(-1, f"idle baseline: {idle.get('machine_busy', 0):.2f} cores busy"
                     + ("" if idle.get("settled", 1.0) else
                        " (never quiet: every marginal CPU figure below is understated)"))
    header = ["saga", "offered/s", "run", "done/s", "÷ ceiling", "p50", "p95", "p99",
              "last-10s p99", "incomplete", "CPU ms/saga"]
    rows = []
    for kind in ("disbursement", "repayment"):
        for step in r.get(kind, []):
            for s in step.get("runs", [step]):
                cpu = (s.get("cpu_ms_per_saga") or {}).get("platform_total")
                rows.append([kind, f"{s['offered_rate']:g}", str(s.get("run", 1)),
                             f"{s['throughput_per_s']:,.1f}",
                             f"{s['throughput_to_ceiling']:.2%}", _ms(s["p50_ms"]),
                             _ms(s["p95_ms"]), _ms(s["p99_ms"]),
                             _ms(s.get("tail_p99_ms")) if s.get("tail_p99_ms") is not None
                             else "unfinished", str(s["incomplete"]),
                             "-" if cpu is None else f"{cpu:.1f}"])
    if rows:
        widths = [max(len(x[i]) for x in [header, *rows]) for i in range(len(header))]
        lines += [_row(header, widths), *(_row(x, widths) for x in rows), ""]
    for kind in ("disbursement", "repayment"):
        best = r.get(f"{kind}_sustained")
        cost = r.get(f"{kind}_cost") or {}
        ms = cost.get("cpu_ms_per_saga", {})
        if best:
            lines.append(
                f"{kind}: sustained {best['throughput_per_s']:,.1f}/s (offered "
                f"{best['offered_rate']:g}/s) p99 {_ms(best['p99_ms'])}, "
                f"{best['throughput_to_ceiling']:.2%} of the ceiling")
        elif r.get(kind):
            lines.append(f"{kind}: no offered rate was sustained")
        fast = r.get(f"{kind}_within_p99_1s")
        if fast:
            lines.append(f"  with p99 <= 1 s: {fast['throughput_per_s']:,.1f}/s (offered "
                         f"{fast['offered_rate']:g}/s, p99 {_ms(fast['p99_ms'])})")
            lines.append("    marginal CPU per saga there: "
                         + _cpu_line(fast.get("cpu_ms_per_saga") or {}))
        if ms:
            outside = ms.get("bench", 0) + ms.get("mobile-money-sim", 0) + ms.get("smsc-sim", 0)
            lines.append(f"  whole phase, gross (drains and idle included): "
                         f"{ms.get('machine_busy', 0):.1f} ms of machine CPU per saga, "
                         f"load generator + simulators {outside:.1f}")
    if rows:
        lines.append("")
    cmp = r.get("batching_comparison")
    if cmp:
        lines.append(f"inbox batching, repayments offered at {cmp['offered_rate']:g}/s "
                     f"for {cmp['seconds']:g}s, services restarted between variants:")
        for label, variant in cmp.items():
            if not isinstance(variant, dict):
                continue  # the rate and the seconds
            step, cost = variant["step"], variant["cost"] or {}
            ms = cost.get("cpu_ms_per_saga", {})
            if step:
                lines.append(
                    f"  {label.replace('_', ' '):30} {step['throughput_per_s']:,.1f}/s, p50 "
                    f"{_ms(step['p50_ms'])}, p99 {_ms(step['p99_ms'])}, "
                    f"{ms.get('machine_busy', 0):.1f} ms machine CPU per saga (postgresql "
                    f"{ms.get('postgresql', 0):.1f}), "
                    f"{cost.get('db_commits_per_saga_whole_database', 0):.1f} commits per saga")
        lines.append("")
    reads = r.get("reads")
    if reads:
        lines.append(f"GET /v1/loans/{{id}} at {reads['offered_rate']:g}/s for "
                     f"{reads['seconds']:g}s: {reads['ok']:,} ok, p50 {_ms(reads['p50_ms'])},"
                     f" p99 {_ms(reads['p99_ms'])}, errors {reads['errors'] or 0}")
    c = r.get("close_of_business")
    if c:
        seed = c["seed"]
        lines.append(f"close of business, {seed['loans']:,} loans / "
                     f"{seed['installments']:,} installments ({seed['size']}):")
        for key in ("catch_up_night", "normal_night"):
            n = c[key]
            lines.append(
                f"  {key.replace('_', ' ')} {n['business_date']}: {n['wall_s']:.1f} s wall, "
                f"peak {n['peak_total_mib']:,.0f} MiB (python {n['python_peak_rss_mib']:,.0f}"
                f" + postgres backend {n['pg_backend_peak_rss_mib']:,.0f} RSS, "
                f"{n['pg_backend_peak_private_mib']:,.0f} private), "
                f"{n.get('loans_per_s', 0):,} loans/s = {n.get('loans_per_s_to_ceiling', 0)}"
                f" x the ceiling; machine busy {n.get('machine_busy_cores', '?')} cores")
        par = c.get("par") or {}
        if par:
            lines.append(f"  PAR1 {par['par1']:.2%}  PAR30 {par['par30']:.2%}  "
                         f"PAR90 {par['par90']:.2%} of {par['outstanding_principal']} MAD")
    if r.get("payments_accruals"):
        from bench.accruals import summary as accruals_summary
        lines.append(accruals_summary(r["payments_accruals"]))
    savings = r.get("savings_close_of_business")
    if savings:
        from bench.savings_cob import summary
        lines.append(summary(savings))
    return "\n".join(lines)
