// Loyalty: the active policy and its versions, the tier distribution as a chart, publishing a
// new version from a form, and the what-if for a profile.
import { expect, graphql } from "./api.js";
import { bars, clearFormErrors, empty, failed, field, formError, h, loading, table, when } from "./ui.js";

const OVERVIEW = `{ tierPolicy { version metric windowDays currency note tiers { name threshold } }
  tierPolicies { version metric note publishedAt publishedBy tiers { name threshold } }
  tierDistribution { policyVersion total tiers { tier profiles } } }`;
const PUBLISH = `mutation($policy: TierPolicyInput!) { publishTierPolicy(policy: $policy, activate: true) {
  __typename ... on TierPolicy { version } ... on InvalidInputError { message field } } }`;
const ACTIVATE = `mutation($version: Int!) { activateTierPolicy(version: $version) {
  __typename ... on TierPolicy { version } ... on Error { message } } }`;
const WHAT_IF = `query($ref: ProfileRef!, $cartTotal: String!) { loyaltyWhatIf(ref: $ref, cartTotal: $cartTotal) {
  tier { name } explanation } }`;

export async function loyaltyPage(container) {
  const overview = h("div", { class: "grid" });
  const reload = () => show(overview);
  container.append(h("h2", {}, "Loyalty"), overview,
    h("div", { class: "grid" }, publishForm(reload), whatIfForm()));
  await reload();
}

async function show(overview) {
  loading(overview, "the tier policy");
  try {
    const { tierPolicy, tierPolicies, tierDistribution } = await graphql(OVERVIEW);
    if (!tierPolicy) return empty(overview, "No tier policy is published yet: publish one below.");
    const active = h("section", { class: "panel", "aria-labelledby": "l-active" },
      h("h3", { id: "l-active" }, `Active policy: version ${tierPolicy.version}`),
      h("p", {}, `${tierPolicy.metric.toLowerCase().replace("_", " ")} over ${tierPolicy.windowDays} days, ${tierPolicy.currency}`),
      table(["Tier", "Threshold"], tierPolicy.tiers.map((t) => [t.name, t.threshold])),
      tierPolicy.note ? h("p", {}, tierPolicy.note) : null);
    const chart = h("section", { class: "panel", "aria-labelledby": "l-dist", "data-distribution-version": tierDistribution?.policyVersion ?? "" },
      h("h3", { id: "l-dist" }, "Tier distribution"),
      tierDistribution
        ? bars(`${tierDistribution.total} profiles under version ${tierDistribution.policyVersion}`,
          tierDistribution.tiers.map((t) => ({ label: t.tier ?? "no tier", value: t.profiles })))
        : h("p", { class: "state empty" }, "No distribution without an active policy."));
    const versions = h("section", { class: "panel", "aria-labelledby": "l-versions" },
      h("h3", { id: "l-versions" }, "Versions"),
      table(["Version", "Tiers", "Published", "By", ""], [...tierPolicies].reverse().map((p) => [
        String(p.version), p.tiers.map((t) => `${t.name} ≥ ${t.threshold}`).join(", "), when(p.publishedAt), p.publishedBy,
        p.version === tierPolicy.version ? "active" : h("button", { type: "button", class: "secondary",
          onclick: async () => {
            const { activateTierPolicy } = await graphql(ACTIVATE, { version: p.version });
            expect(activateTierPolicy, "TierPolicy");
            show(overview);
          } }, `Activate ${p.version}`),
      ])));
    overview.replaceChildren(active, chart, versions);
  } catch (error) {
    failed(overview, error);
  }
}

function publishForm(reload) {
  const tiers = h("textarea", { name: "tiers", rows: 4, required: true, spellcheck: "false",
    "aria-describedby": "l-tiers-help" }, "BRONZE 0\nSILVER 500\nGOLD 2000");
  const form = h(
    "form",
    { class: "panel stacked", "aria-label": "Publish a tier policy" },
    h("h3", {}, "Publish a new version"),
    field("Measure", h("select", { name: "metric" }, h("option", { value: "NET_SPEND" }, "net spend"),
      h("option", { value: "POINTS" }, "points"))),
    field("Points per unit (points only)", h("input", { name: "pointsPerUnit", inputmode: "decimal" })),
    field("Window (days)", h("input", { name: "windowDays", type: "number", min: 1, value: 365, required: true })),
    field("Return lock (days)", h("input", { name: "returnLockDays", type: "number", min: 0, value: 0 })),
    field("Retention", h("select", { name: "retention" }, ["NONE", "ROLLING", "END_OF_NEXT_YEAR"].map((k) =>
      h("option", { value: k }, k.toLowerCase().replaceAll("_", " "))))),
    field("Tiers, one per line: NAME threshold (ascending, the first at 0)", tiers),
    h("p", { id: "l-tiers-help", class: "state" }, "e.g. SILVER 500 means 500.00 of net spend."),
    field("Note", h("input", { name: "note" })),
    h("button", { type: "submit" }, "Publish and activate"),
    h("p", { class: "ok", role: "status" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const data = new FormData(form);
    const parsed = String(data.get("tiers")).split("\n").map((l) => l.trim()).filter(Boolean)
      .map((l) => l.split(/\s+/));
    const bad = parsed.findIndex((parts) => parts.length !== 2);
    if (bad >= 0) return formError(form, { field: "tiers", message: `line ${bad + 1} needs a NAME and a threshold` });
    const policy = {
      metric: data.get("metric"),
      windowDays: Number(data.get("windowDays")),
      returnLockDays: Number(data.get("returnLockDays") || 0),
      retention: { kind: data.get("retention"), days: data.get("retention") === "ROLLING" ? Number(data.get("windowDays")) : null },
      pointsPerUnit: data.get("pointsPerUnit") || null,
      tiers: parsed.map(([name, threshold]) => ({ name, threshold })),
      note: data.get("note") ?? "",
    };
    try {
      const { publishTierPolicy } = await graphql(PUBLISH, { policy });
      const published = expect(publishTierPolicy, "TierPolicy");
      form.querySelector("[role=status]").textContent = `Published and activated version ${published.version}`;
      await reload();
    } catch (error) {
      formError(form, error);
    }
  });
  return form;
}

function whatIfForm() {
  const answer = h("div", { role: "status" });
  const form = h(
    "form",
    { class: "panel", "aria-label": "What-if for a profile" },
    h("h3", {}, "What if"),
    field("Customer e-mail", h("input", { name: "email", type: "email", required: true })),
    field("Cart total", h("input", { name: "cartTotal", required: true, inputmode: "decimal" })),
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
