"""The summary table printed at the end of a run (the JSON report has everything)."""

from __future__ import annotations

from typing import Any


def _ms(v: Any) -> str:
    return "-" if v is None else f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms"


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def summary_table(r: dict[str, Any]) -> str:
    ceiling = r["ceiling"]["commits_per_s"]
    lines = [f"Noria benchmark {r['started_at']} ({'quick' if r['quick'] else 'full'} run, "
             f"{r['machine']['cpus']} CPUs, git {r['machine']['git']})",
             f"ceiling: {ceiling:,.0f} commits/s (single-row INSERT, "
             f"{r['ceiling']['concurrency']} connections; "
             + ", ".join(f"c={x['concurrency']}: {x['commits_per_s']:,.0f}"
                         for x in r["ceiling_runs"]) + ")", ""]
    header = ["saga", "offered/s", "done/s", "÷ ceiling", "p50", "p95", "p99", "incomplete"]
    rows = []
    for kind in ("disbursement", "repayment"):
        for s in r.get(kind, []):
            rows.append([kind, f"{s['offered_rate']:g}", f"{s['throughput_per_s']:,.1f}",
                         f"{s['throughput_to_ceiling']:.2%}", _ms(s["p50_ms"]),
                         _ms(s["p95_ms"]), _ms(s["p99_ms"]), str(s["incomplete"])])
    if rows:
        widths = [max(len(x[i]) for x in [header, *rows]) for i in range(len(header))]
        lines += [_row(header, widths), *(_row(x, widths) for x in rows), ""]
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
                f"{n['pg_backend_peak_private_mib']:,.0f} private)")
        par = c.get("par") or {}
        if par:
            lines.append(f"  PAR1 {par['par1']:.2%}  PAR30 {par['par30']:.2%}  "
                         f"PAR90 {par['par90']:.2%} of {par['outstanding_principal']} MAD")
    return "\n".join(lines)
