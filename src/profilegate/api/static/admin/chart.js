// Bar charts over time as inline SVG, drawn here (no chart library). Each chart is an image
// with a label that says what it shows and its highest value; each bar carries its period and
// value as a title, and the page shows the same figures as a table beside the charts.
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 420;
const HEIGHT = 150;
const LEFT = 72; // room for the highest value's label
const BOTTOM = 22; // room for the first and last period's label
const TOP = 8;

function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

// series: [{ name, values: [number|null per period] }]; labels: one per period;
// format: a value as the reader should see it.
export function timeChart({ key, title, labels, series, format }) {
  const values = series.flatMap((one) => one.values).filter((v) => v !== null);
  const top = Math.max(0, ...values);
  const scale = top > 0 ? (HEIGHT - TOP - BOTTOM) / top : 0;
  const slot = (WIDTH - LEFT) / Math.max(1, labels.length);
  const bar = Math.max(1, (slot * 0.8) / series.length);
  const baseline = HEIGHT - BOTTOM;
  const bars = labels.flatMap((label, index) => series.map((one, which) => {
    const value = one.values[index];
    const height = value === null ? 0 : Math.max(value > 0 ? 1 : 0, value * scale);
    const said = `${label}${series.length > 1 ? `, ${one.name}` : ""}: ${value === null ? "no value" : format(value)}`;
    return s("rect", { class: `series-${which}`, x: (LEFT + index * slot + slot * 0.1 + which * bar).toFixed(1),
      y: (baseline - height).toFixed(1), width: bar.toFixed(1), height: height.toFixed(1), "data-value": value ?? "" },
    s("title", {}, said));
  }));
  const highest = series.map((one) => {
    const known = one.values.filter((v) => v !== null);
    if (!known.length) return `${one.name}: no value`;
    const most = Math.max(...known);
    return `${one.name} highest ${format(most)} (${labels[one.values.indexOf(most)]})`;
  });
  const summary = `${title} per period from ${labels[0]} to ${labels.at(-1)}: ${highest.join("; ")}`;
  const svg = s(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": summary, class: "chart", "data-chart": key },
    s("line", { class: "axis", x1: LEFT, y1: baseline, x2: WIDTH, y2: baseline }),
    s("line", { class: "axis", x1: LEFT, y1: TOP, x2: LEFT, y2: baseline }),
    s("text", { class: "tick", x: LEFT - 4, y: TOP + 8, "text-anchor": "end" }, format(top)),
    s("text", { class: "tick", x: LEFT - 4, y: baseline, "text-anchor": "end" }, format(0)),
    s("text", { class: "tick", x: LEFT, y: HEIGHT - 6 }, labels[0] ?? ""),
    labels.length > 1 ? s("text", { class: "tick", x: WIDTH, y: HEIGHT - 6, "text-anchor": "end" }, labels.at(-1)) : "",
    ...bars,
  );
  return svg;
}
