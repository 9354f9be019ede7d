"""The inline style sheet of `qikflow report`: system fonts only, nothing fetched."""

from __future__ import annotations

CSS = """
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d8dee4;
  --card: #ffffff; --page: #f3f5f7; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px; display: grid;
  grid-template-columns: 1fr 1fr; gap: 16px; align-items: start; }
header, .tiles, .wide { grid-column: 1 / -1; }
h1 { margin: 0; font-size: 24px; }
h2 { margin: 0 0 4px; font-size: 17px; }
h3 { margin: 12px 0 4px; font-size: 14px; }
.window { margin: 4px 0 0; color: var(--muted); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 16px 18px; min-width: 0; }
.note { margin: 0 0 10px; color: var(--muted); font-size: 13px; }
.none { color: var(--muted); }
.tiles { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 14px; display: flex; flex-direction: column; color: var(--muted);
  font-size: 13px; }
.big { font-size: 26px; font-weight: 650; color: var(--ink);
  font-variant-numeric: tabular-nums; }
.headline .big { font-size: 22px; margin-right: 4px; }
svg.chart { display: block; width: 100%; height: auto; max-width: 100%; }
svg text { font-family: inherit; fill: var(--ink); }
svg .tick { font-size: 12px; fill: var(--muted); }
svg .tick.date { font-weight: 600; }
svg .axis { font-size: 12px; fill: var(--muted); }
svg .label { font-size: 13px; }
svg .value { font-size: 13px; font-weight: 600; font-variant-numeric: tabular-nums; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 0 0 8px; font-size: 13px; }
.key { display: inline-flex; align-items: center; gap: 6px; }
.key i { width: 12px; height: 12px; border-radius: 2px; display: inline-block; }
.key b { font-weight: 600; color: var(--muted); font-variant-numeric: tabular-nums; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
.quantiles { margin: 0 0 6px; color: var(--muted); font-size: 13px; }
.quantiles b { color: var(--ink); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 10px 5px 0; border-bottom: 1px solid var(--line);
  white-space: nowrap; }
thead th { font-size: 12px; color: var(--muted); font-weight: 600; }
tbody th { font-weight: 600; }
.num { text-align: right; }
tr.total th, tr.total td { font-weight: 650; border-top: 2px solid var(--line); }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.empty { grid-column: 1 / -1; }
@media (max-width: 800px) { main { grid-template-columns: 1fr; }
  .tiles { grid-template-columns: repeat(2, 1fr); } .pair { grid-template-columns: 1fr; } }
"""
