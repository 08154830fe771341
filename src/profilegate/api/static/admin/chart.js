// Bar charts over time as inline SVG, drawn here (no chart library). Each chart is an image
// with a label that says what it shows and its highest value; each bar carries its period and
// value as a title, and the page shows the same figures as a table beside the charts. The value
// axis has round steps with grid lines; the time axis labels evenly spaced periods.
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 420;
const HEIGHT = 170;
const LEFT = 64; // room for the value axis' labels
const RIGHT = 14; // room for half of the last period's label
const BOTTOM = 22; // room for the time axis' labels
const TOP = 10;
const VALUE_TICKS = 4; // about this many steps up the value axis
const LABEL_WIDTH = 52; // the room one time label takes, in the chart's units

function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

// A round step (1, 2 or 5 times a power of ten) that splits 0..top into about `ticks` steps.
// Counts (`whole`) step by whole numbers.
export function niceStep(top, whole = false, ticks = VALUE_TICKS) {
  if (!(top > 0)) return 1;
  const rough = Math.max(top / ticks, whole ? 1 : 0);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough);
  return step;
}

// Which periods get a label on the time axis: evenly spaced, the first and the last included.
export function labelled(count, room) {
  const most = Math.max(2, Math.floor(room / LABEL_WIDTH));
  if (count <= most) return [...Array(count).keys()];
  const every = Math.ceil((count - 1) / (most - 1));
  const picked = [];
  for (let index = 0; index < count - 1; index += every) picked.push(index);
  if (count - 1 - picked.at(-1) < every / 2) picked.pop(); // no label crowding the last one
  return [...picked, count - 1];
}

// series: [{ name, values: [number|null per period] }]; labels: one per period (said in full);
// ticks: one short label per period for the axis; format: a value as the reader should see it;
// tick: a value on the axis (defaults to format); whole: the values are counts.
export function timeChart({ key, title, labels, ticks = labels, series, format, tick = format, whole = false }) {
  const values = series.flatMap((one) => one.values).filter((v) => v !== null);
  const step = niceStep(Math.max(0, ...values), whole);
  const top = Math.max(step, Math.ceil(Math.max(0, ...values) / step) * step);
  const baseline = HEIGHT - BOTTOM;
  const scale = (baseline - TOP) / top;
  const room = WIDTH - LEFT - RIGHT;
  const slot = room / Math.max(1, labels.length);
  const bar = Math.max(1, (slot * 0.8) / series.length);
  const bars = labels.flatMap((label, index) => series.map((one, which) => {
    const value = one.values[index];
    const height = value === null ? 0 : Math.max(value > 0 ? 1 : 0, value * scale);
    const said = `${label}${series.length > 1 ? `, ${one.name}` : ""}: ${value === null ? "no value" : format(value)}`;
    return s("rect", { class: `series-${which}`, x: (LEFT + index * slot + slot * 0.1 + which * bar).toFixed(1),
      y: (baseline - height).toFixed(1), width: bar.toFixed(1), height: height.toFixed(1), "data-value": value ?? "" },
    s("title", {}, said));
  }));
  const steps = [];
  for (let index = 0; index * step <= top + step / 2; index += 1) steps.push(index * step);
  const valueAxis = steps.flatMap((value) => {
    const y = (baseline - value * scale).toFixed(1);
    return [
      value > 0 ? s("line", { class: "grid-line", x1: LEFT, y1: y, x2: WIDTH - RIGHT, y2: y }) : "",
      s("text", { class: "tick value-tick", x: LEFT - 4, y: Number(y) + 3, "text-anchor": "end" }, tick(value)),
    ];
  });
  const timeAxis = labelled(labels.length, room).map((index) =>
    s("text", { class: "tick time-tick", x: (LEFT + (index + 0.5) * slot).toFixed(1), y: HEIGHT - 6,
      "text-anchor": "middle" }, ticks[index]));
  const highest = series.map((one) => {
    const known = one.values.filter((v) => v !== null);
    if (!known.length) return `${one.name}: no value`;
    const most = Math.max(...known);
    return `${one.name} highest ${format(most)} (${labels[one.values.indexOf(most)]})`;
  });
  const summary = `${title} per period from ${labels[0]} to ${labels.at(-1)}: ${highest.join("; ")}`;
  return s(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": summary, class: "chart", "data-chart": key },
    ...valueAxis,
    s("line", { class: "axis", x1: LEFT, y1: baseline, x2: WIDTH - RIGHT, y2: baseline }),
    s("line", { class: "axis", x1: LEFT, y1: TOP, x2: LEFT, y2: baseline }),
    ...timeAxis,
    ...bars,
  );
}
