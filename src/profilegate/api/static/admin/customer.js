// One customer: find by identity or id; profile, extensions (set/remove with a reason), tier
// and what-if, segments with their explanation, merges, events, export and erase.
import { expect, graphql } from "./api.js";
import { ask } from "./dialog.js";
import { count, dayOf, day, money, share } from "./format.js";
import { clearFormErrors, empty, errorLine, failed, field, formError, h, keyValues, loading, table, when }
  from "./ui.js";

const PROFILE_FIELDS = `id version createdAt updatedAt traits identities { type value }
  consents { purpose granted source at }
  extensions { name at by reason source expiresAt }
  metrics { orders netSpend { amount currency } averageOrderValueNet { amount currency } lastOrderAt
    firstSeen channels { channel count } }
  loyalty { tier { name } reason decidedBy explanation nextTier { name } amountToNextTier { amount currency }
    validUntil policyVersion }
  segments`;
// LoyaltyReason in words; `by`: the extension that decided, when one did.
const REASONS = {
  NO_POLICY: () => "no tier policy is active",
  ENTRY: () => "entry tier: every customer holds it",
  THRESHOLD: () => "reached by the customer's spend in the window",
  RETAINED: () => "kept from an earlier period (the policy's retention)",
  NO_TIER_BY_EXTENSION: (by) => `no tier: the extension ${by ?? "set on the profile"} excludes the customer`,
  FIXED_BY_EXTENSION: (by) => `fixed by the extension ${by ?? "set on the profile"}`,
  FLOOR_BY_EXTENSION: (by) => `raised to the floor the extension ${by ?? "set on the profile"} grants`,
};
const CHANNELS = { WEB: "Web", APP: "App", STORE: "Store", EMAIL: "E-mail", CALLCENTER: "Call centre",
  PARTNER: "Partner" };

export const reasonInWords = (loyalty) => (REASONS[loyalty.reason] ?? (() => loyalty.reason.toLowerCase()))(
  loyalty.decidedBy);
const FIND = `query($ref: ProfileRef!) { profile(ref: $ref) { ${PROFILE_FIELDS} }
  merges(ref: $ref, first: 10) { loser at by reason identities }
  extensionDefinitions { name } segments { key name } }`;
const ERRORS = `... on Error { message } ... on InvalidInputError { field }`;
const SET = `mutation($ref: ProfileRef!, $name: String!, $reason: String!, $expiresAt: DateTime) {
  setExtension(ref: $ref, name: $name, reason: $reason, expiresAt: $expiresAt) {
    __typename ... on ExtensionChanged { changed } ${ERRORS} } }`;
const REMOVE = `mutation($ref: ProfileRef!, $name: String!, $reason: String!) {
  removeExtension(ref: $ref, name: $name, reason: $reason) {
    __typename ... on ExtensionChanged { changed } ${ERRORS} } }`;
const WHAT_IF = `query($ref: ProfileRef!, $cartTotal: String!) { loyaltyWhatIf(ref: $ref, cartTotal: $cartTotal) {
  tier { name } explanation } }`;
const EXPLAIN = `query($ref: ProfileRef!, $key: String!) { profile(ref: $ref) { explainSegment(key: $key) {
  ...E parts { ...E parts { ...E parts { ...E parts { ...E } } } } } } }
  fragment E on SegmentExplanation { clause held seen }`;
const EXPORT = `query($ref: ProfileRef!) { exportProfile(ref: $ref) { __typename
  ... on ProfileExport { document } ${ERRORS} } }`;
const ERASE = `mutation($ref: ProfileRef!, $reason: String!) { eraseProfile(ref: $ref, reason: $reason) {
  __typename ... on ProfileErased { profiles events } ${ERRORS} } }`;
const KINDS = [["EMAIL", "E-mail"], ["PHONE", "Phone"], ["CUSTOMER_ID", "Customer id"],
  ["LOYALTY_CARD", "Loyalty card"], ["ID", "Profile id"]];

export function customerPage(container) {
  const result = h("div", {}, h("p", { class: "state empty" }, "Find a customer to see their profile."));
  const form = h(
    "form",
    { role: "search", "aria-label": "Find a customer" },
    field("Find by", h("select", { name: "kind" }, KINDS.map(([v, t]) => h("option", { value: v }, t)))),
    field("Value", h("input", { name: "value", required: true, size: 32 })),
    h("button", { type: "submit" }, "Find"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const value = String(data.get("value")).trim();
    const ref = data.get("kind") === "ID" ? { id: value } : { identity: { type: data.get("kind"), value } };
    show(result, ref);
  });
  container.append(h("h2", {}, "Customer"), form, result);
}

async function show(result, ref) {
  loading(result, "the profile");
  let data;
  try {
    data = await graphql(FIND, { ref });
  } catch (error) {
    return failed(result, error);
  }
  if (!data.profile) return empty(result, "No profile answers to this reference.");
  const profile = data.profile;
  const byId = { id: profile.id };
  const refresh = () => show(result, byId);
  result.replaceChildren(
    h("p", {}, "Profile ", h("code", {}, profile.id), ` · version ${profile.version} · updated ${when(profile.updatedAt)}`),
    summaryCard(profile),
    h(
      "div",
      { class: "grid" },
      identitiesPanel(profile),
      extensionsPanel(profile, data.extensionDefinitions, byId, refresh),
      loyaltyPanel(profile, byId),
      segmentsPanel(profile, data.segments, byId),
      mergesPanel(data.merges),
      privacyPanel(byId, result),
    ),
  );
}

// The figures a shop asks first: orders, net spend, average order, last order, channels, tier.
function summaryCard(profile) {
  const { metrics, loyalty } = profile;
  const events = metrics.channels.reduce((sum, c) => sum + c.count, 0);
  const mix = [...metrics.channels].sort((a, b) => b.count - a.count);
  const figure = (key, name, value, note = null) =>
    h("div", { "data-figure": key }, h("dt", {}, name), h("dd", {}, value, note ? h("small", {}, note) : null));
  const next = loyalty.nextTier
    ? `${loyalty.nextTier.name} in ${money(loyalty.amountToNextTier)}` : null;
  return h("section", { class: "card summary", "aria-labelledby": "p-summary" },
    h("h3", { id: "p-summary" }, "At a glance"),
    h("dl", { class: "figures" },
      figure("orders", "Orders", count(metrics.orders), "lifetime"),
      figure("netSpend", "Net spend", money(metrics.netSpend), "lifetime, less returns and cancellations"),
      figure("averageOrderValueNet", "Average order (net)", money(metrics.averageOrderValueNet)),
      figure("lastOrder", "Last order", dayOf(metrics.lastOrderAt),
        metrics.firstSeen ? `customer since ${dayOf(metrics.firstSeen)}` : null),
      figure("channels", "Channels", mix.length
        ? h("ul", { class: "channel-mix" }, mix.map((c) =>
          h("li", {}, `${CHANNELS[c.channel] ?? c.channel} ${share(c.count, events)}`)))
        : "—", events ? `of ${count(events)} events` : null),
      figure("tier", "Tier", loyalty.tier?.name ?? "no tier",
        [reasonInWords(loyalty), next, loyalty.validUntil ? `held until ${day(loyalty.validUntil)}` : null]
          .filter(Boolean).join(" · "))));
}

function identitiesPanel(profile) {
  return h(
    "section",
    { class: "card", "aria-labelledby": "p-identities" },
    h("h3", { id: "p-identities" }, "Identities, traits, consents"),
    table(["Type", "Value"], profile.identities.map((i) => [i.type, i.value])),
    h("h4", {}, "Traits"),
    h("div", { class: "traits", "aria-label": "Traits" }, keyValues(profile.traits)),
    h("h4", {}, "Consents"),
    profile.consents.length
      ? table(["Purpose", "Answer", "Source", "At"],
        profile.consents.map((c) => [c.purpose, c.granted ? "granted" : "refused", c.source, when(c.at)]))
      : h("p", { class: "state empty" }, "No consent recorded."),
  );
}

function extensionsPanel(profile, definitions, ref, refresh) {
  const list = profile.extensions.length
    ? table(
      ["Name", "Source", "By", "Reason", "Set", "Expires", ""],
      profile.extensions.map((e) => [
        e.name, e.source, e.by, e.reason, when(e.at), e.expiresAt ? when(e.expiresAt) : "never",
        h("button", { type: "button", class: "secondary", onclick: () => remove(e.name) }, `Remove ${e.name}`),
      ]),
    )
    : h("div", { class: "empty-state" }, h("p", { class: "state empty" }, "No extension in force."),
      h("p", { class: "help" }, "Extensions mark a customer (employee, no-reward, vip); segments and tiers read "
        + "them. Set one below with a reason: it is kept in the audit log."));
  const status = h("div", { role: "status" });
  const remove = async (name) => {
    const reason = await ask({ title: `Remove ${name}`, confirm: `Remove ${name}`,
      message: `The profile loses the extension ${name}; the reason is kept in the audit log.`,
      reason: "Reason for removing it" });
    if (reason === null) return;
    try {
      const { removeExtension } = await graphql(REMOVE, { ref, name, reason });
      expect(removeExtension, "ExtensionChanged");
      refresh();
    } catch (error) {
      status.replaceChildren(errorLine(error));
    }
  };
  const form = h(
    "form",
    { "aria-label": "Set an extension" },
    field("Extension", h("select", { name: "name", required: true },
      definitions.map((d) => h("option", { value: d.name }, d.name)))),
    field("Reason", h("input", { name: "reason", required: true, size: 28 })),
    field("Expires at", h("input", { name: "expiresAt", type: "datetime-local" })),
    h("button", { type: "submit", disabled: !definitions.length }, "Set extension"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const data = new FormData(form);
    const expires = data.get("expiresAt");
    const variables = { ref, name: data.get("name"), reason: data.get("reason"),
      expiresAt: expires ? new Date(expires).toISOString() : null };
    try {
      const { setExtension } = await graphql(SET, variables);
      expect(setExtension, "ExtensionChanged");
      refresh();
    } catch (error) {
      formError(form, error);
    }
  });
  return h("section", { class: "card wide", "aria-labelledby": "p-extensions" },
    h("h3", { id: "p-extensions" }, "Extensions"), list, status,
    definitions.length ? form : h("p", { class: "state empty" }, "Define an extension first (Extensions)."));
}

function loyaltyPanel(profile, ref) {
  const loyalty = profile.loyalty;
  const answer = h("div", { role: "status" });
  const form = h(
    "form",
    { "aria-label": "Tier what-if" },
    field("Cart total", h("input", { name: "cartTotal", required: true, inputmode: "decimal", placeholder: "120.00" })),
    h("button", { type: "submit" }, "What if"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    try {
      const { loyaltyWhatIf } = await graphql(WHAT_IF, { ref, cartTotal: new FormData(form).get("cartTotal") });
      answer.replaceChildren(h("p", {}, h("strong", {}, loyaltyWhatIf.tier?.name ?? "no tier"), " — ",
        loyaltyWhatIf.explanation));
    } catch (error) {
      formError(form, error);
    }
  });
  return h("section", { class: "card", "aria-labelledby": "p-loyalty" },
    h("h3", { id: "p-loyalty" }, "Tier"),
    h("p", { "data-tier-reason": loyalty.reason }, h("strong", {}, loyalty.tier?.name ?? "no tier"), " — ",
      reasonInWords(loyalty)),
    loyalty.explanation !== reasonInWords(loyalty) ? h("p", { class: "help" }, loyalty.explanation) : null,
    form, answer);
}

function segmentsPanel(profile, segments, ref) {
  const out = h("div", { class: "explain", role: "status" });
  const form = h(
    "form",
    { "aria-label": "Explain a segment" },
    field("Segment", h("select", { name: "key" }, segments.map((s) => h("option", { value: s.key }, s.name)))),
    h("button", { type: "submit", disabled: !segments.length }, "Explain"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const { profile: p } = await graphql(EXPLAIN, { ref, key: new FormData(form).get("key") });
      out.replaceChildren(h("ul", {}, explanation(p.explainSegment)));
    } catch (error) {
      failed(out, error);
    }
  });
  return h("section", { class: "card", "aria-labelledby": "p-segments" },
    h("h3", { id: "p-segments" }, "Segments"),
    profile.segments.length ? h("ul", { class: "chips" }, profile.segments.map((s) => h("li", {}, s)))
      : h("p", { class: "state empty" }, "In no segment."),
    form, out);
}

function explanation(node) {
  return h("li", { class: node.held ? "held" : "missed" },
    h("code", {}, node.clause), node.seen !== null && node.seen !== undefined ? ` (seen: ${node.seen})` : "",
    node.parts?.length ? h("ul", {}, node.parts.map(explanation)) : null);
}

function mergesPanel(merges) {
  return h("section", { class: "card", "aria-labelledby": "p-merges" },
    h("h3", { id: "p-merges" }, "Merges"),
    merges.length ? table(["Merged profile", "At", "By", "Reason"],
      merges.map((m) => [m.loser, when(m.at), m.by, m.reason]))
      : h("p", { class: "state empty" }, "No profile was merged into this one."));
}

function privacyPanel(ref, result) {
  const status = h("div", { role: "status" });
  const events = h("div");
  const exportButton = h("button", { type: "button", class: "secondary" }, "Export (GDPR art. 15)");
  exportButton.addEventListener("click", async () => {
    try {
      const { exportProfile } = await graphql(EXPORT, { ref });
      const { document } = expect(exportProfile, "ProfileExport");
      const recent = (document.events ?? []).slice(-10).reverse();
      events.replaceChildren(h("h4", {}, "Recent events"), recent.length
        ? table(["At", "Type", "Channel"], recent.map((e) => [when(e.at), e.type, e.channel ?? "—"]))
        : h("p", { class: "state empty" }, "No event."));
      const blob = new Blob([JSON.stringify(document, null, 2)], { type: "application/json" });
      const link = h("a", { href: URL.createObjectURL(blob), download: `profile-${ref.id}.json` }, "Download the export");
      status.replaceChildren(link);
    } catch (error) {
      status.replaceChildren(errorLine(error));
    }
  });
  const eraseButton = h("button", { type: "button", class: "danger" }, "Erase (GDPR art. 17)");
  eraseButton.addEventListener("click", async () => {
    const reason = await ask({ title: "Erase this profile", confirm: "Erase profile", danger: true,
      message: `Erasing ${ref.id} deletes it, the profiles merged into it, their identities and events; `
        + "it cannot be undone. Write the reason without personal data: it is kept in the audit log.",
      reason: "Reason for the erasure" });
    if (reason === null) return;
    try {
      const { eraseProfile } = await graphql(ERASE, { ref, reason });
      const erased = expect(eraseProfile, "ProfileErased");
      result.replaceChildren(h("p", { class: "ok", role: "status" },
        `Erased: ${erased.profiles} profile(s), ${erased.events} event(s).`));
    } catch (error) {
      status.replaceChildren(errorLine(error));
    }
  });
  return h("section", { class: "card", "aria-labelledby": "p-privacy" },
    h("h3", { id: "p-privacy" }, "Events, export and erasure"),
    h("p", {}, exportButton, " ", eraseButton), status, events);
}
