// DOM building without innerHTML (nothing the API returns is parsed as markup), and the
// loading, empty and error states every panel shows.
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

// Show an API error in a form: next to the input whose name the error's field ends with,
// else at the form's foot.
export function formError(form, error) {
  clearFormErrors(form);
  const name = error.field?.split(".").pop();
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

export function table(headings, rows) {
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c))))),
  );
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

// A horizontal bar chart, drawn with elements (no canvas, no inline style: widths are classes).
export function bars(label, items) {
  const top = Math.max(1, ...items.map((i) => i.value));
  return h(
    "figure",
    { class: "bars" },
    h("figcaption", {}, label),
    h(
      "ul",
      {},
      items.map((item) => {
        const share = Math.round((item.value / top) * 20) * 5;
        return h(
          "li",
          {},
          h("span", { class: "bar-label" }, item.label),
          h("span", { class: `bar w${share}`, role: "img", "aria-label": `${item.label}: ${item.value}` }),
          h("span", { class: "bar-value" }, String(item.value)),
        );
      }),
    ),
  );
}
