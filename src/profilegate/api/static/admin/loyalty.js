// Loyalty: the active policy and its versions, the tier distribution as a chart, publishing a
// new version from a form that starts from the active policy and edits all of it, and the
// what-if for a profile.
import { decimalNumber, expect, graphql } from "./api.js";
import { count } from "./format.js";
import { bars, clearFormErrors, empty, failed, field, formError, h, loading, table, when } from "./ui.js";

const POLICY = `version metric windowDays pointsPerUnit returnLockDays retention { kind days } currency note
  tiers { name threshold benefits { key type value } } overrides { extension effect tier }`;
const OVERVIEW = `{ tierPolicy { ${POLICY} }
  tierPolicies { version metric note publishedAt publishedBy tiers { name threshold } }
  tierDistribution { policyVersion total tiers { tier profiles } } }`;
const PUBLISH = `mutation($policy: TierPolicyInput!) { publishTierPolicy(policy: $policy, activate: true) {
  __typename ... on TierPolicy { version } ... on InvalidInputError { message field }
  ... on TierPolicyUnchangedError { message version } } }`;
const ACTIVATE = `mutation($version: Int!) { activateTierPolicy(version: $version) {
  __typename ... on TierPolicy { version } ... on Error { message } } }`;
const WHAT_IF = `query($ref: ProfileRef!, $cartTotal: String!) { loyaltyWhatIf(ref: $ref, cartTotal: $cartTotal) {
  tier { name } explanation } }`;
// Where publishing starts when no policy is active yet.
const FIRST_POLICY = { metric: "NET_SPEND", windowDays: 365, pointsPerUnit: null, returnLockDays: 0,
  retention: { kind: "NONE", days: null }, note: "", overrides: [],
  tiers: [{ name: "BRONZE", threshold: "0", benefits: [] }, { name: "SILVER", threshold: "500.00", benefits: [] },
    { name: "GOLD", threshold: "2000.00", benefits: [] }] };
const RETENTIONS = [["NONE", "none: the tier follows the metric"], ["ROLLING", "rolling: kept N days after reached"],
  ["END_OF_NEXT_YEAR", "until the end of the next year"]];
const EFFECTS = ["NO_TIER", "FIXED_TIER", "FLOOR"];

export async function loyaltyPage(container) {
  const overview = h("div", { class: "grid" });
  const editor = h("div", { class: "grid" });
  const reload = async () => {
    const active = await show(overview);
    editor.replaceChildren(publishForm(active ?? FIRST_POLICY, reload), whatIfForm());
  };
  overview.addEventListener("activated", reload);
  container.append(h("h2", {}, "Loyalty"), overview, h("h3", { class: "section" }, "Change the policy"), editor);
  await reload();
}

// The overview; answers the active policy (null without one).
async function show(overview) {
  loading(overview, "the tier policy");
  try {
    const { tierPolicy, tierPolicies, tierDistribution } = await graphql(OVERVIEW);
    if (!tierPolicy) {
      empty(overview, "No tier policy is published yet: publish one below.");
      return null;
    }
    const chart = h("section", { class: "card", "aria-labelledby": "l-dist",
      "data-distribution-version": tierDistribution?.policyVersion ?? "" },
    h("h3", { id: "l-dist" }, "Tier distribution"),
    tierDistribution
      ? bars(`${count(tierDistribution.total)} profiles under version ${tierDistribution.policyVersion}`,
        tierDistribution.tiers.map((t) => ({ label: t.tier ?? "no tier", value: t.profiles })))
      : h("p", { class: "state empty" }, "No distribution without an active policy."));
    const versions = h("section", { class: "card", "aria-labelledby": "l-versions" },
      h("h3", { id: "l-versions" }, "Versions"),
      table(["Version", "Tiers", "Published", "By", ""], [...tierPolicies].reverse().map((p) => [
        String(p.version), p.tiers.map((t) => `${t.name} ≥ ${t.threshold}`).join(", "), when(p.publishedAt), p.publishedBy,
        p.version === tierPolicy.version ? h("span", { class: "ok" }, "active") : h("button", { type: "button",
          class: "secondary", onclick: async () => {
            const { activateTierPolicy } = await graphql(ACTIVATE, { version: p.version });
            expect(activateTierPolicy, "TierPolicy");
            overview.dispatchEvent(new Event("activated"));
          } }, `Activate ${p.version}`),
      ])));
    overview.replaceChildren(activeCard(tierPolicy), chart, versions);
    return tierPolicy;
  } catch (error) {
    failed(overview, error);
    return null;
  }
}

function activeCard(policy) {
  const measure = policy.metric === "POINTS" ? `points (${policy.pointsPerUnit} per ${policy.currency})` : "net spend";
  const retention = policy.retention.kind === "ROLLING" ? `kept ${policy.retention.days} days after reached`
    : policy.retention.kind === "END_OF_NEXT_YEAR" ? "kept until the end of the next year" : "not kept";
  return h("section", { class: "card", "aria-labelledby": "l-active" },
    h("h3", { id: "l-active" }, `Active policy: version ${policy.version}`),
    h("p", {}, `${measure} over ${policy.windowDays} days in ${policy.currency}; orders count after `
      + `${policy.returnLockDays} days; a tier reached is ${retention}.`),
    table(["Tier", "From", "Benefits"], policy.tiers.map((t) => [t.name, t.threshold,
      t.benefits.map((b) => `${b.key}: ${["TEXT", "DECIMAL"].includes(b.type) ? b.value : JSON.stringify(b.value)}`)
        .join(", ") || "—"])),
    h("h4", {}, "Overrides by extension"),
    policy.overrides.length
      ? h("ul", { class: "overrides" }, policy.overrides.map((o) => h("li", {}, overrideInWords(o))))
      : h("p", { class: "state" }, "None."),
    policy.note ? h("p", { class: "help" }, policy.note) : null);
}

function overrideInWords(o) {
  if (o.effect === "NO_TIER") return `${o.extension}: no tier`;
  if (o.effect === "FIXED_TIER") return `${o.extension}: always ${o.tier}`;
  return `${o.extension}: at least ${o.tier}`;
}

// A tier as one line: NAME threshold key=value …; text values in quotes, decimals with a point.
function tierLine(tier) {
  const benefit = (b) => {
    if (b.type === "TEXT") return `${b.key}=${JSON.stringify(b.value)}`;
    if (b.type === "DECIMAL") return `${b.key}=${String(b.value).includes(".") ? b.value : `${b.value}.0`}`;
    return `${b.key}=${JSON.stringify(b.value)}`;
  };
  return [tier.name, tier.threshold, ...tier.benefits.map(benefit)].join(" ");
}

const overrideLine = (o) => [o.extension, o.effect, o.tier].filter(Boolean).join(" ");

const BENEFIT = /^([A-Za-z0-9_-]+)=("(?:[^"\\]|\\.)*"|\S+)$/;
const TOKENS = /[^\s"]+="(?:[^"\\]|\\.)*"|\S+/g;

function parseBenefit(token, where) {
  const found = BENEFIT.exec(token);
  if (!found) throw new Error(`${where}: write a benefit as key=value, not ${token}`);
  const [, key, text] = found;
  if (text.startsWith("\"")) return { key, value: JSON.parse(text) };
  if (text === "true" || text === "false") return { key, value: text === "true" };
  if (/^-?\d+$/.test(text)) return { key, value: Number(text) };
  if (/^-?\d+\.\d+$/.test(text)) return { key, value: decimalNumber(text) };
  throw new Error(`${where}: ${key}=${text} is not true, false, a number or a "text in quotes"`);
}

function parseTiers(text) {
  return lines(text).map(([line, number]) => {
    const [name, threshold, ...rest] = line.match(TOKENS) ?? [];
    if (!threshold) throw new Error(`line ${number} needs a NAME and a threshold`);
    return { name, threshold, benefits: rest.map((t) => parseBenefit(t, `line ${number}`)) };
  });
}

function parseOverrides(text) {
  return lines(text).map(([line, number]) => {
    const [extension, effect, tier, extra] = line.split(/\s+/);
    if (!EFFECTS.includes(effect) || extra !== undefined || (effect === "NO_TIER") !== (tier === undefined)) {
      throw new Error(`line ${number}: write an override as extension NO_TIER, extension FIXED_TIER TIER `
        + "or extension FLOOR TIER");
    }
    return { extension, effect, tier: tier ?? null };
  });
}

const lines = (text) => String(text).split("\n").map((l, i) => [l.trim(), i + 1]).filter(([l]) => l);

// The input a policy error's field names: policy.tiers[2].name -> tiers, policy.retention.days -> retentionDays.
function inputOf(path) {
  const [first, second] = path.replace(/^policy\./, "").split(/[.[]/);
  return first === "retention" && second === "days" ? "retentionDays" : first;
}

function publishForm(policy, reload) {
  const number = (name, value, min) => h("input", { name, type: "number", min, value, required: true, size: 6 });
  const tiers = h("textarea", { name: "tiers", rows: Math.max(4, policy.tiers.length + 2), required: true,
    spellcheck: "false", "aria-describedby": "l-tiers-help" }, policy.tiers.map(tierLine).join("\n"));
  const overrides = h("textarea", { name: "overrides", rows: Math.max(2, policy.overrides.length + 1),
    spellcheck: "false", "aria-describedby": "l-overrides-help" }, policy.overrides.map(overrideLine).join("\n"));
  const option = (value, text, chosen) => h("option", { value, selected: value === chosen }, text);
  const status = h("p", { class: "ok", role: "status" });
  const form = h(
    "form",
    { class: "card wide stacked", "aria-label": "Publish a tier policy" },
    h("h3", {}, policy.version ? `Publish a new version (from version ${policy.version})` : "Publish the first version"),
    h("div", { class: "row" },
      field("Measure", h("select", { name: "metric" }, option("NET_SPEND", "net spend", policy.metric),
        option("POINTS", "points", policy.metric))),
      field("Points per unit", h("input", { name: "pointsPerUnit", inputmode: "decimal", size: 6,
        value: policy.pointsPerUnit ?? "" })),
      field("Window (days)", number("windowDays", policy.windowDays, 1)),
      field("Return lock (days)", number("returnLockDays", policy.returnLockDays, 0))),
    h("div", { class: "row" },
      field("Retention", h("select", { name: "retention" }, RETENTIONS.map(([k, t]) => option(k, t, policy.retention.kind)))),
      field("Retention (days)", h("input", { name: "retentionDays", type: "number", min: 1, size: 6,
        value: policy.retention.days ?? "" }))),
    field("Tiers, one per line: NAME threshold benefit=value …", tiers),
    h("p", { id: "l-tiers-help", class: "help" }, "Ascending, the first at 0. SILVER 500.00 free_shipping=true "
      + "discount_percent=5 voucher=10.0 line=\"silver\": a threshold of 500.00 (of net spend, or points), "
      + "benefits true/false, whole numbers, decimals with a point, texts in quotes."),
    field("Overrides by extension, one per line", overrides),
    h("p", { id: "l-overrides-help", class: "help" }, "no-reward NO_TIER · employee FIXED_TIER GOLD · "
      + "status-match FLOOR GOLD"),
    field("Note", h("textarea", { name: "note", rows: 2, class: "prose" }, policy.note ?? "")),
    h("p", {}, h("button", { type: "submit" }, "Publish and activate")),
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    status.textContent = "";
    const data = new FormData(form);
    let draft;
    try {
      draft = { tiers: parseTiers(data.get("tiers")), overrides: parseOverrides(data.get("overrides")) };
    } catch (error) {
      const name = error.message.includes("override") ? "overrides" : "tiers";
      return formError(form, { field: name, message: error.message });
    }
    const retention = data.get("retention");
    const policyInput = {
      metric: data.get("metric"),
      windowDays: Number(data.get("windowDays")),
      returnLockDays: Number(data.get("returnLockDays") || 0),
      retention: { kind: retention, days: data.get("retentionDays") ? Number(data.get("retentionDays")) : null },
      pointsPerUnit: data.get("pointsPerUnit") || null,
      ...draft,
      note: data.get("note") ?? "",
    };
    try {
      const { publishTierPolicy } = await graphql(PUBLISH, { policy: policyInput });
      const published = expect(publishTierPolicy, "TierPolicy");
      await reload();
      document.querySelector("form[aria-label='Publish a tier policy'] [role=status]").textContent =
        `Published and activated version ${published.version}`;
    } catch (error) {
      formError(form, error, inputOf);
    }
  });
  return form;
}

function whatIfForm() {
  const answer = h("div", { role: "status" });
  const form = h(
    "form",
    { class: "card", "aria-label": "What-if for a profile" },
    h("h3", {}, "What if"),
    h("p", { class: "help" }, "The tier a customer earns with a cart of this total, once it is kept."),
    field("Customer e-mail", h("input", { name: "email", type: "email", required: true, size: 24 })),
    field("Cart total", h("input", { name: "cartTotal", required: true, inputmode: "decimal", size: 8,
      placeholder: "120.00" })),
    h("button", { type: "submit" }, "What if"),
    answer,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const data = new FormData(form);
    const ref = { identity: { type: "EMAIL", value: data.get("email") } };
    try {
      const { loyaltyWhatIf } = await graphql(WHAT_IF, { ref, cartTotal: data.get("cartTotal") });
      answer.replaceChildren(h("p", {}, h("strong", {}, loyaltyWhatIf.tier?.name ?? "no tier"), " — ", loyaltyWhatIf.explanation));
    } catch (error) {
      formError(form, error);
    }
  });
  return form;
}
