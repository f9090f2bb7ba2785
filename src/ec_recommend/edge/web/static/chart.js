// A small line chart in plain SVG: one series over time, its own y scale.

import { h, svg } from "./ui.js";

const WIDTH = 480;
const HEIGHT = 140;
const PAD = { left: 44, right: 8, top: 10, bottom: 22 };

function niceMax(value) {
  if (value <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / step) * step;
}

// points: [{x: Date, y: number|null}]; null leaves a gap.
export function lineChart(title, unit, points) {
  const values = points.map((p) => p.y).filter((y) => y !== null);
  const top = niceMax(Math.max(0, ...values));
  const times = points.map((p) => p.x.getTime());
  const first = Math.min(...times);
  const span = Math.max(Math.max(...times) - first, 1);
  const x = (t) => PAD.left + ((t - first) / span) * (WIDTH - PAD.left - PAD.right);
  const y = (v) => HEIGHT - PAD.bottom - (v / top) * (HEIGHT - PAD.top - PAD.bottom);
  const latest = values.length ? values[values.length - 1] : null;
  const chart = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    class: "chart",
    role: "img",
    "aria-label": `${title}: latest ${latest === null ? "no data" : `${latest.toFixed(1)} ${unit}`}`,
  });
  for (const fraction of [0, 0.5, 1]) {
    const gy = y(top * fraction);
    chart.append(svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: gy, y2: gy, class: "grid-line" }));
    const label = svg("text", { x: PAD.left - 4, y: gy + 4, "text-anchor": "end", class: "axis" });
    label.textContent = String(+(top * fraction).toFixed(2));
    chart.append(label);
  }
  let path = "";
  let pen = "M";
  for (const point of points) {
    if (point.y === null) {
      pen = "M";
      continue;
    }
    path += `${pen}${x(point.x.getTime()).toFixed(1)} ${y(point.y).toFixed(1)} `;
    pen = "L";
  }
  if (path) chart.append(svg("path", { d: path, class: "series" }));
  const last = [...points].reverse().find((p) => p.y !== null);
  if (last) chart.append(svg("circle", { cx: x(last.x.getTime()), cy: y(last.y), r: 3, class: "latest" }));
  const minutes = Math.round(span / 60000);
  const caption = svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 6, "text-anchor": "end", class: "axis" });
  caption.textContent = minutes >= 1 ? `last ${minutes} min` : `last ${Math.round(span / 1000)} s`;
  chart.append(caption);
  return h(
    "figure",
    { class: "chart-box" },
    h("figcaption", {}, `${title} `, h("strong", {}, latest === null ? "–" : `${latest.toFixed(1)} ${unit}`)),
    chart,
  );
}
