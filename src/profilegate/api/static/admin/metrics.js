// Shop metrics: a range of shop days, a granularity and a channel; the range's totals, a chart
// per figure over the periods, and the same periods as a table.
import { graphql } from "./api.js";
import { timeChart } from "./chart.js";
import { count, day, decimal, money, shopToday, shortDay } from "./format.js";
import { clearFormErrors, empty, field, formError, h, loading, table } from "./ui.js";

const FIGURES = `from to visitors buyers orders conversionRate revenue { amount currency }
  averageOrderValueGross { amount currency } averageOrderValueNet { amount currency } returnRate
  newCustomers returningCustomers`;
const METRICS = `query($from: Date!, $to: Date!, $granularity: Granularity!, $channel: Channel) {
  shopMetrics(from: $from, to: $to, granularity: $granularity, channel: $channel) {
    total { ${FIGURES} } periods { ${FIGURES} } } }`;
const GRANULARITIES = [["DAY", "Day"], ["WEEK", "Week (ISO)"], ["MONTH", "Month"]];
const CHANNELS = [["", "All channels"], ["WEB", "Web"], ["APP", "App"], ["STORE", "Store"], ["EMAIL", "E-mail"],
  ["CALLCENTER", "Call centre"], ["PARTNER", "Partner"]];
const DEFAULT_DAYS = 30;

const rates = new Intl.NumberFormat(undefined, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 });
const wholePercents = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
const rate = (r) => (r === null ? "—" : rates.format(r));
const amount = (m) => (m === null ? null : Number(m.amount));
const MONTH = { month: "long", year: "numeric" };
const SHORT_MONTH = { month: "short", year: "numeric" };

// A period said in full (the table, the titles) and shortly (the time axis), in the browser's
// locale; the API's days are the shop's days already.
function periodLabels(periods, granularity) {
  if (granularity === "MONTH") return [periods.map((p) => day(p.from, MONTH)), periods.map((p) => day(p.from, SHORT_MONTH))];
  return [periods.map((p) => (p.from === p.to ? day(p.from) : `${day(p.from)} – ${day(p.to)}`)),
    periods.map((p) => shortDay(p.from))];
}

// Every figure of the page: how it is read from a period, shown, and charted.
const TOTALS = [
  ["visitors", "Visitors", (p) => count(p.visitors)],
  ["buyers", "Buyers", (p) => count(p.buyers)],
  ["orders", "Orders", (p) => count(p.orders)],
  ["conversionRate", "Conversion rate", (p) => rate(p.conversionRate)],
  ["revenue", "Revenue", (p) => money(p.revenue)],
  ["averageOrderValueGross", "Average order value (gross)", (p) => money(p.averageOrderValueGross)],
  ["averageOrderValueNet", "Average order value (net)", (p) => money(p.averageOrderValueNet)],
  ["returnRate", "Return rate", (p) => rate(p.returnRate)],
  ["newCustomers", "New customers", (p) => count(p.newCustomers)],
  ["returningCustomers", "Returning customers", (p) => count(p.returningCustomers)],
];

function charts(periods, currency) {
  const of = (read) => periods.map(read);
  const cash = (v) => `${decimal(v.toFixed(2))} ${currency}`;
  const cashTick = (v) => (Number.isInteger(v) ? count(v) : decimal(v.toFixed(2)));
  const percent = (v) => rates.format(v);
  const percentTick = (v) => wholePercents.format(v);
  return [
    { key: "visitors", title: "Visitors and buyers", format: count, whole: true,
      series: [{ name: "visitors", values: of((p) => p.visitors) }, { name: "buyers", values: of((p) => p.buyers) }] },
    { key: "orders", title: "Orders", format: count, whole: true, series: [{ name: "orders", values: of((p) => p.orders) }] },
    { key: "conversionRate", title: "Conversion rate", format: percent, tick: percentTick,
      series: [{ name: "conversion rate", values: of((p) => p.conversionRate) }] },
    { key: "revenue", title: "Revenue", caption: `Revenue (${currency})`, format: cash, tick: cashTick, series: [{ name: "revenue", values: of((p) => amount(p.revenue)) }] },
    { key: "averageOrderValue", title: "Average order value, gross and net",
      caption: `Average order value, gross and net (${currency})`, format: cash, tick: cashTick,
      series: [{ name: "gross", values: of((p) => amount(p.averageOrderValueGross)) },
        { name: "net", values: of((p) => amount(p.averageOrderValueNet)) }] },
    { key: "returnRate", title: "Return rate", format: percent, tick: percentTick,
      series: [{ name: "return rate", values: of((p) => p.returnRate) }] },
    { key: "customers", title: "New and returning customers", format: count, whole: true,
      series: [{ name: "new", values: of((p) => p.newCustomers) }, { name: "returning", values: of((p) => p.returningCustomers) }] },
  ];
}

export function metricsPage(container) {
  const today = shopToday();
  const start = shopToday(-(DEFAULT_DAYS - 1));
  const result = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { "aria-label": "Shop metrics range" },
    field("From", h("input", { name: "from", type: "date", required: true, value: start })),
    field("To", h("input", { name: "to", type: "date", required: true, value: today })),
    field("Granularity", h("select", { name: "granularity" }, GRANULARITIES.map(([v, t]) => h("option", { value: v }, t)))),
    field("Channel", h("select", { name: "channel" }, CHANNELS.map(([v, t]) => h("option", { value: v }, t)))),
    h("button", { type: "submit" }, "Show metrics"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    show(form, result, { from: data.get("from"), to: data.get("to"), granularity: data.get("granularity"),
      channel: data.get("channel") || null });
  });
  container.append(h("h2", {}, "Shop metrics"),
    h("p", { class: "help" }, "Shop days of the shop's time zone, both ends included (docs/metrics.md)."), form, result);
  return show(form, result, { from: start, to: today, granularity: "DAY", channel: null });
}

let asked = 0;

async function show(form, result, variables) {
  const mine = ++asked;
  clearFormErrors(form);
  loading(result, "the shop metrics");
  let report;
  try {
    ({ shopMetrics: report } = await graphql(METRICS, variables));
  } catch (error) {
    if (mine !== asked) return;
    result.replaceChildren();
    return formError(form, error);
  }
  if (mine !== asked) return; // a later range was asked for meanwhile
  const { total, periods } = report;
  if (total.visitors === 0) return empty(result, `No visitor from ${day(total.from)} to ${day(total.to)}.`);
  const [labels, ticks] = periodLabels(periods, variables.granularity);
  result.replaceChildren(
    h("section", { class: "card", "aria-labelledby": "m-totals" },
      h("h3", { id: "m-totals" }, `${day(total.from)} to ${day(total.to)}`),
      h("dl", { class: "figures" }, TOTALS.map(([key, name, shown]) =>
        h("div", { "data-figure": key }, h("dt", {}, name), h("dd", {}, shown(total)))))),
    h("div", { class: "grid charts" }, charts(periods, total.revenue.currency).map((chart) =>
      h("figure", { class: "card chart-panel" }, h("figcaption", {}, chart.caption ?? chart.title),
        timeChart({ ...chart, labels, ticks }),
        chart.series.length > 1
          ? h("ul", { class: "legend", "aria-hidden": "true" }, chart.series.map((one, which) =>
            h("li", { class: `series-${which}` }, one.name)))
          : null))),
    h("section", { class: "card", "aria-labelledby": "m-periods" },
      h("h3", { id: "m-periods" }, "Periods"),
      table(["Period", ...TOTALS.map(([, name]) => name)],
        periods.map((p, index) => [labels[index], ...TOTALS.map(([, , shown]) => shown(p))]))),
  );
}
