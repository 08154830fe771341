// How the console writes numbers, money and dates: in the browser's locale (Intl), and times in
// the shop's time zone (the gateway names it on the page: <html data-shop-zone>), so a day is
// the shop's day wherever the reader sits.
export const shopZone = () => document.documentElement.dataset.shopZone || "UTC";

const numbers = new Intl.NumberFormat();
const percents = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });

export const count = (n) => (n === null || n === undefined ? "—" : numbers.format(n));
export const share = (part, whole) => (whole ? percents.format(part / whole) : "—");

// A decimal string as written ("1234.50"), with the locale's separators and its own decimals.
export function decimal(text) {
  const places = String(text).split(".")[1]?.length ?? 0;
  return new Intl.NumberFormat(undefined, { minimumFractionDigits: places, maximumFractionDigits: places })
    .format(String(text));
}

export const money = (m) => (m === null || m === undefined ? "—" : `${decimal(m.amount)} ${m.currency}`);

// A timestamp (ISO) as a date and time of the shop's zone, the zone named.
export function moment(iso) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit",
    minute: "2-digit", timeZone: shopZone(), timeZoneName: "short" }).format(new Date(iso));
}

// A timestamp's day in the shop's zone.
export function dayOf(iso) {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeZone: shopZone() }).format(new Date(iso));
}

// A shop day as the API writes it ("2026-11-18"): already the shop's, so drawn without a zone shift.
export function day(isoDay, style = { dateStyle: "medium" }) {
  if (!isoDay) return "—";
  const [year, month, date] = isoDay.split("-").map(Number);
  return new Intl.DateTimeFormat(undefined, { ...style, timeZone: "UTC" }).format(new Date(Date.UTC(year, month - 1, date)));
}

export const shortDay = (isoDay) => day(isoDay, { day: "numeric", month: "short" });

// Today in the shop's zone, as an ISO day.
export function shopToday(offsetDays = 0) {
  const today = new Intl.DateTimeFormat("en-CA", { timeZone: shopZone() }).format(new Date());
  const [year, month, date] = today.split("-").map(Number);
  return new Date(Date.UTC(year, month - 1, date + offsetDays)).toISOString().slice(0, 10);
}

// A date and time typed for the shop (an <input type="datetime-local"> value, "2026-11-20T10:00")
// as the ISO moment it is in the shop's zone.
export function fromShopTime(local) {
  const [date, time = "00:00"] = local.split("T");
  const [year, month, day] = date.split("-").map(Number);
  const [hour, minute] = time.split(":").map(Number);
  const wall = Date.UTC(year, month - 1, day, hour, minute);
  const zoned = new Intl.DateTimeFormat("en-US", { timeZone: shopZone(), hourCycle: "h23", year: "numeric",
    month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" });
  const offset = (at) => {
    const part = Object.fromEntries(zoned.formatToParts(new Date(at)).map((p) => [p.type, Number(p.value)]));
    return Date.UTC(part.year, part.month - 1, part.day, part.hour, part.minute, part.second) - at;
  };
  return new Date(wall - offset(wall - offset(wall))).toISOString();
}
