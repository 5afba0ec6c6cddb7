/**
 * The throughput curve (item 8) as an SVG chart, written by `npm run bench` (docs/performance-curve.svg):
 * bot turns/s against the number of sessions, with the ideal (sessions / backend latency), and the
 * share of that ideal, each backend latency its own series. Plain SVG text, no plotting dependency.
 */
import type { LoadResult } from './scenarios/load.js';
import { round } from './stats.js';

export interface ChartMeta {
  title: string;
  /** Lines under the plots: build, machine, date, how busy the machine was. */
  notes: string[];
}

const WIDTH = 800;
const PANEL_HEIGHT = 250;
const MARGIN = { left: 78, right: 150, top: 64, gap: 70, bottom: 34 };
const PLOT_WIDTH = WIDTH - MARGIN.left - MARGIN.right;
const COLOURS = ['#1f6fb2', '#c2571a', '#2e8b57', '#8e44ad'];
const NOTE_LINE = 16;
/** Closer than this (px), two points of a series label on alternate sides. */
const LABEL_GAP = 40;

const esc = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (n: number): string => (n >= 1000 ? n.toLocaleString('en-US', { maximumFractionDigits: 0 }) : String(round(n, 0)));

/** A round axis maximum at or above `value`: 1, 2, 2.5 or 5 × a power of ten. */
function niceMax(value: number): number {
  if (!(value > 0)) {
    return 1;
  }
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((m) => m * power >= value) ?? 10;
  return step * power;
}

interface Series {
  latencyMs: number;
  colour: string;
  points: LoadResult[];
}

function seriesOf(points: readonly LoadResult[]): Series[] {
  const latencies = [...new Set(points.map((p) => p.latency_ms))].sort((a, b) => a - b);
  return latencies.map((latencyMs, i) => ({
    latencyMs,
    colour: COLOURS[i % COLOURS.length],
    points: points.filter((p) => p.latency_ms === latencyMs).sort((a, b) => a.sessions - b.sessions),
  }));
}

/** One panel: axes, grid, and each series drawn by `value`. */
function panel(
  top: number,
  series: Series[],
  xMax: number,
  yMax: number,
  yLabel: string,
  yTick: (v: number) => string,
  value: (p: LoadResult) => number,
  label: (p: LoadResult) => string,
  extra: (x: (n: number) => number, y: (v: number) => number) => string,
): string {
  const x = (n: number): number => MARGIN.left + (n / xMax) * PLOT_WIDTH;
  const y = (v: number): number => top + PANEL_HEIGHT - (Math.min(v, yMax) / yMax) * PANEL_HEIGHT;
  const out: string[] = [];
  for (let i = 0; i <= 5; i++) {
    const v = (yMax * i) / 5;
    out.push(`<line x1="${MARGIN.left}" y1="${y(v)}" x2="${MARGIN.left + PLOT_WIDTH}" y2="${y(v)}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${MARGIN.left - 8}" y="${y(v) + 4}" text-anchor="end" class="tick">${esc(yTick(v))}</text>`);
  }
  const step = niceMax(xMax / 5) / (niceMax(xMax / 5) > xMax / 4 ? 2 : 1);
  for (let n = 0; n <= xMax; n += step) {
    out.push(`<line x1="${x(n)}" y1="${top + PANEL_HEIGHT}" x2="${x(n)}" y2="${top + PANEL_HEIGHT + 5}" stroke="#666"/>`);
    out.push(`<text x="${x(n)}" y="${top + PANEL_HEIGHT + 18}" text-anchor="middle" class="tick">${fmt(n)}</text>`);
  }
  out.push(`<line x1="${MARGIN.left}" y1="${top + PANEL_HEIGHT}" x2="${MARGIN.left + PLOT_WIDTH}" y2="${top + PANEL_HEIGHT}" stroke="#666"/>`);
  out.push(`<line x1="${MARGIN.left}" y1="${top}" x2="${MARGIN.left}" y2="${top + PANEL_HEIGHT}" stroke="#666"/>`);
  const midY = top + PANEL_HEIGHT / 2;
  out.push(`<text transform="translate(18 ${midY}) rotate(-90)" text-anchor="middle" class="axis">${esc(yLabel)}</text>`);
  out.push(extra(x, y));
  /** Another series has a point just above this one, where its label would go. */
  const crowdedAbove = (p: LoadResult, py: number): boolean =>
    series.some((other) =>
      other.points.some((q) => q !== p && q.sessions === p.sessions && py - y(value(q)) >= 0 && py - y(value(q)) < LABEL_GAP),
    );
  for (const [index, s] of series.entries()) {
    if (s.points.length > 1) {
      const path = s.points.map((p, i) => `${i === 0 ? 'M' : 'L'}${round(x(p.sessions), 1)},${round(y(value(p)), 1)}`).join(' ');
      out.push(`<path d="${path}" fill="none" stroke="${s.colour}" stroke-width="2.2"/>`);
    }
    let previousX = -Infinity;
    let below = false;
    for (const p of s.points) {
      const px = round(x(p.sessions), 1);
      const py = round(y(value(p)), 1);
      out.push(`<circle cx="${px}" cy="${py}" r="4" fill="${s.colour}"/>`);
      // Series share x positions (1,000 sessions at 200 and at 400 ms): the first one labels its
      // points above (or, when two are too close for their labels, alternately below), the next
      // ones to the right.
      below = index === 0 && (px - previousX < LABEL_GAP ? !below : crowdedAbove(p, py));
      previousX = px;
      const [lx, ly, anchor] = index > 0 ? [px + 8, py + 4, 'start'] : below ? [px, py + 17, 'middle'] : [px, py - 9, 'middle'];
      out.push(`<text x="${lx}" y="${ly}" text-anchor="${anchor}" class="value" fill="${s.colour}">${esc(label(p))}</text>`);
    }
  }
  return out.join('\n');
}

export function curveSvg(points: readonly LoadResult[], meta: ChartMeta): string {
  const series = seriesOf(points);
  // A little room right of the last point for the ideal lines' labels.
  const xMax = Math.max(...points.map((p) => p.sessions)) * 1.08;
  const top1 = MARGIN.top;
  const top2 = top1 + PANEL_HEIGHT + MARGIN.gap;
  const height = top2 + PANEL_HEIGHT + MARGIN.bottom + 20 + meta.notes.length * NOTE_LINE;
  const yMax = niceMax(Math.max(...points.map((p) => Math.max(p.ideal_per_s, p.turns_per_s))));
  const ideal = (x: (n: number) => number, y: (v: number) => number): string =>
    series
      .map((s) => {
        const last = s.points[s.points.length - 1];
        const end = last ? last.sessions : 0;
        const perSession = 1000 / s.latencyMs;
        return (
          `<line x1="${x(0)}" y1="${y(0)}" x2="${round(x(end), 1)}" y2="${round(y(end * perSession), 1)}" stroke="${s.colour}" stroke-width="1.4" stroke-dasharray="6 5" opacity="0.7"/>` +
          `<text x="${round(x(end) + 6, 1)}" y="${round(y(end * perSession) + 4, 1)}" class="tick" fill="${s.colour}">ideal, ${s.latencyMs} ms</text>`
        );
      })
      .join('\n');
  const target = (x: (n: number) => number, y: (v: number) => number): string =>
    `<line x1="${x(0)}" y1="${y(90)}" x2="${x(xMax)}" y2="${y(90)}" stroke="#999" stroke-dasharray="3 4"/>` +
    `<text x="${x(xMax) + 6}" y="${y(90) + 4}" class="tick">target 90 %</text>`;
  const legend = series
    .map((s, i) => {
      // In the right margin of the lower panel, clear of the ideal lines' labels.
      const ly = top2 + 100 + i * 20;
      const lx = MARGIN.left + PLOT_WIDTH + 20;
      return `<circle cx="${lx}" cy="${ly}" r="4" fill="${s.colour}"/><text x="${lx + 10}" y="${ly + 4}" class="tick">backend ${s.latencyMs} ms</text>`;
    })
    .join('\n');
  const notesTop = top2 + PANEL_HEIGHT + MARGIN.bottom + 14;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    '<style>.tick{font-size:11px;fill:#444}.axis{font-size:12px;fill:#222}.value{font-size:11px;font-weight:bold}.title{font-size:16px;font-weight:bold;fill:#111}.panel{font-size:13px;fill:#222}.note{font-size:11px;fill:#555}</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="${MARGIN.left}" y="28" class="title">${esc(meta.title)}</text>`,
    `<text x="${MARGIN.left}" y="${top1 - 10}" class="panel">Bot turns per second</text>`,
    panel(top1, series, xMax, yMax, 'turns/s', fmt, (p) => p.turns_per_s, (p) => fmt(p.turns_per_s), ideal),
    `<text x="${MARGIN.left}" y="${top2 - 10}" class="panel">Share of ideal (sessions ÷ backend latency)</text>`,
    panel(top2, series, xMax, 100, 'share of ideal', (v) => `${round(v, 0)} %`, (p) => p.ratio * 100, (p) => `${round(p.ratio * 100, 0)} %`, target),
    `<text x="${MARGIN.left + PLOT_WIDTH / 2}" y="${top2 + PANEL_HEIGHT + 32}" text-anchor="middle" class="axis">autonomous 3-bot sessions at once</text>`,
    legend,
    ...meta.notes.map((line, i) => `<text x="${MARGIN.left}" y="${notesTop + i * NOTE_LINE}" class="note">${esc(line)}</text>`),
    '</svg>',
    '',
  ].join('\n');
}
