// DOM building without innerHTML (nothing the API returns is parsed as markup), and the
// loading, empty and error states every card shows.
import { count, decimal, moment, share } from "./format.js";

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

export function loading(container, what) {
  container.replaceChildren(h("p", { class: "state", role: "status" }, `Loading ${what}…`));
}

export function empty(container, message) {
  container.replaceChildren(h("p", { class: "state empty" }, message));
}

export function failed(container, error) {
  container.replaceChildren(errorLine(error));
}

export function errorLine(error) {
  const field = error.field ? h("code", {}, error.field) : null;
  return h("p", { class: "error", role: "alert" }, field, field ? ": " : "", error.message);
}

// Show an API error in a form: next to the input the error's field names (by default the
// input whose name the field ends with), else at the form's foot.
export function formError(form, error, inputOf = (path) => path.split(".").pop()) {
  clearFormErrors(form);
  const name = error.field ? inputOf(error.field) : null;
  const input = name ? form.querySelector(`[name="${CSS.escape(name)}"]`) : null;
  const line = errorLine(error);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    line.id = `${input.id}-error`;
    input.setAttribute("aria-describedby", line.id);
    input.after(line);
  } else {
    form.append(line);
  }
}

export function clearFormErrors(form) {
  form.querySelectorAll(".error").forEach((e) => e.remove());
  form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
}

export function field(label, input) {
  input.id ||= `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-${++fieldCount}`;
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input);
}
let fieldCount = 0;

// A table; one of more than three columns shows its rows as label: value blocks when its card
// is narrow (each cell carries its column's heading).
export function table(headings, rows) {
  return h(
    "table",
    { class: headings.length > 3 ? "data stack" : "data" },
    h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c, i) => h("td", { "data-label": headings[i] }, c))))),
  );
}

export const when = moment;

// A JSON value (traits) as nested key/value lists: text as written, numbers in the locale.
export function keyValues(value) {
  if (value === null || value === undefined) return h("span", { class: "state" }, "—");
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== "object")) return value.map(scalar).join(", ") || "—";
    return h("ol", { class: "kv-list" }, value.map((v) => h("li", {}, keyValues(v))));
  }
  if (typeof value === "object") {
    const entries = Object.entries(value);
    if (!entries.length) return h("span", { class: "state" }, "none");
    return h("dl", { class: "kv" }, entries.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, keyValues(v)))));
  }
  return scalar(value);
}

function scalar(value) {
  if (typeof value === "number") return Number.isInteger(value) ? count(value) : decimal(String(value));
  if (typeof value === "boolean") return value ? "yes" : "no";
  return value === null ? "—" : String(value);
}

// A horizontal bar chart, drawn with elements (no canvas, no inline style: widths are classes);
// each bar says its count and its share of the whole.
export function bars(label, items) {
  const top = Math.max(1, ...items.map((i) => i.value));
  const whole = items.reduce((sum, i) => sum + i.value, 0);
  return h(
    "figure",
    { class: "bars" },
    h("figcaption", {}, label),
    h(
      "ul",
      {},
      items.map((item) => {
        const width = Math.round((item.value / top) * 20) * 5;
        return h(
          "li",
          {},
          h("span", { class: "bar-label" }, item.label),
          h("span", { class: `bar w${width}`, role: "img", "aria-label": `${item.label}: ${item.value}` }),
          h("span", { class: "bar-value" }, `${count(item.value)} (${share(item.value, whole)})`),
        );
      }),
    ),
  );
}
