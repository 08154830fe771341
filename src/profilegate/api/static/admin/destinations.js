// Destinations: each with its state and lag, the last failed requests of its delivery log, its
// dead letters (each with a Replay button), pause/resume, resend a time range; and a form that
// defines a destination and shows its signing secret once.
import { expect, graphql } from "./api.js";
import { count, decimal, fromShopTime } from "./format.js";
import { clearFormErrors, empty, errorLine, failed, field, formError, h, loading, table, when } from "./ui.js";

const LIST = `{ destinations { id name url state stateReason consentPurpose
  send { kinds segments tiers extensions } lag { seconds changes }
  deadLetters(first: 1) { deadLetters { batchId } } } }`;
const DETAIL = `query($id: String!) { destination(id: $id) { id name url state stateReason
  lag { seconds changes }
  deliveries(first: 100) { deliveries { batchId kind at status attempt latencyMs statusCode count error } }
  deadLetters(first: 50) { deadLetters { batchId kind at count attempts error } } } }`;
const STATE = (verb) => `mutation($id: String!) { ${verb}Destination(id: $id) {
  __typename ... on DestinationChanged { destination { state } } ... on DestinationNotFoundError { message } } }`;
const REPLAY = `mutation($batchId: String!) { replayDeadLetter(batchId: $batchId) {
  __typename ... on DeadLetterNotFoundError { message } } }`;
const RESEND = `mutation($id: String!, $from: DateTime!, $to: DateTime!) {
  resendDestinationRange(id: $id, from: $from, to: $to) { __typename
  ... on InvalidInputError { message field } ... on DestinationNotFoundError { message } } }`;
const CREATE = `mutation($input: DestinationInput!) { createDestination(input: $input) { __typename
  ... on DestinationCreated { secret destination { id } } ... on InvalidInputError { message field }
  ... on DestinationExistsError { message } } }`;
const KINDS = ["PROFILE_CREATED", "PROFILE_UPDATED", "CONSENT_CHANGED", "EVENT_TRACKED", "PROFILES_MERGED",
  "PROFILES_UNMERGED", "PROFILE_ERASED"];
const SHOWN_FAILURES = 5;
const REPLAY_CHECKS = 10; // after a replay, the dead letters are looked at again once a second this often

export async function destinationsPage(container) {
  const list = h("section", { class: "card full", "aria-labelledby": "d-list" });
  const detail = h("section", { class: "card wide", "aria-labelledby": "d-detail", hidden: true });
  const create = h("section", { class: "card", "aria-labelledby": "d-create" });
  container.append(h("h2", {}, "Destinations"), h("div", { class: "grid" }, list, detail, create));
  const open = (id) => showDetail(detail, id, () => showList(list, open));
  createForm(create, (id) => showList(list, open).then(() => open(id)));
  await showList(list, open);
}

function lagText(lag) {
  return `${decimal(lag.seconds.toFixed(1))} s · ${count(lag.changes)} change${lag.changes === 1 ? "" : "s"}`;
}

function sends(send) {
  const parts = [
    ...send.segments.map((s) => `segment ${s}`),
    send.tiers ? "tier changes" : null,
    ...send.extensions.map((e) => `extension ${e}`),
    ...send.kinds.map((k) => k.toLowerCase().replaceAll("_", " ")),
  ];
  return parts.filter(Boolean).join(", ");
}

async function showList(list, open) {
  const heading = h("h3", { id: "d-list" }, "All destinations");
  list.replaceChildren(heading, h("p", { class: "state", role: "status" }, "Loading destinations…"));
  try {
    const { destinations } = await graphql(LIST);
    if (!destinations.length) {
      return list.replaceChildren(heading, h("p", { class: "state empty" },
        "No destination yet: define one to push profiles, segments and tiers to an HTTPS endpoint."));
    }
    list.replaceChildren(heading, table(
      ["Destination", "State", "Lag", "Sends", "Dead letters", ""],
      destinations.map((d) => [
        h("span", {}, h("strong", {}, d.name), h("br"), h("code", {}, d.id), " · ", h("code", {}, d.url)),
        stateText(d),
        h("span", { "data-lag": d.id }, lagText(d.lag)),
        `${sends(d.send)} (consent: ${d.consentPurpose})`,
        d.deadLetters.deadLetters.length ? "yes" : "none",
        h("button", { type: "button", class: "secondary", onclick: () => open(d.id),
          "aria-label": `Open ${d.name}` }, "Open"),
      ]),
    ));
  } catch (error) {
    list.replaceChildren(heading, errorLine(error));
  }
}

// A request's HTTP status; a dead letter's line names none (its last attempt's is the line before).
function codeText(line) {
  if (line.status === "dead_lettered") return "—";
  return line.statusCode === null ? "no answer" : String(line.statusCode);
}

function stateText(d) {
  const state = d.state.toLowerCase();
  return d.stateReason ? `${state}: ${d.stateReason}` : state;
}

async function showDetail(detail, id, changed, note = "") {
  detail.hidden = false;
  loading(detail, id);
  let destination;
  try {
    ({ destination } = await graphql(DETAIL, { id }));
  } catch (error) {
    return failed(detail, error);
  }
  if (!destination) return empty(detail, `No destination has the id ${id}.`);
  const again = (said = "") => showDetail(detail, id, changed, said).then(changed);
  const status = h("p", { role: "status", class: "ok", "data-note": "" }, note);
  const toggle = async () => {
    const verb = destination.state === "ENABLED" ? "pause" : "resume";
    try {
      const answer = await graphql(STATE(verb), { id });
      expect(answer[`${verb}Destination`], "DestinationChanged");
      await again();
    } catch (error) {
      status.replaceChildren(errorLine(error));
    }
  };
  const failures = destination.deliveries.deliveries.filter((d) => d.status !== "delivered").slice(0, SHOWN_FAILURES);
  const letters = destination.deadLetters.deadLetters;
  detail.replaceChildren(
    h("h3", { id: "d-detail" }, destination.name),
    h("dl", { class: "kv" },
      h("div", {}, h("dt", {}, "URL"), h("dd", {}, h("code", {}, destination.url))),
      h("div", {}, h("dt", {}, "State"), h("dd", { "data-state": destination.state }, stateText(destination))),
      h("div", {}, h("dt", {}, "Lag"), h("dd", {}, lagText(destination.lag)))),
    h("p", {},
      h("button", { type: "button", onclick: toggle }, destination.state === "ENABLED" ? "Pause" : "Resume"), " ",
      h("button", { type: "button", class: "secondary", onclick: () => again() }, "Refresh")),
    status,
    h("h4", { class: "section" }, "Last failures"),
    failures.length
      ? table(["At", "Status", "Code", "Attempt", "Error"], failures.map((f) => [
        when(f.at), f.status.replace("_", " "), codeText(f),
        count(f.attempt), f.error || "—"]))
      : h("p", { class: "state empty" }, "No failed request in the delivery log."),
    h("h4", { class: "section" }, "Dead letters"),
    letters.length
      ? table(["Given up", "Batch", "Messages", "Attempts", "Last error", ""], letters.map((l) => [
        when(l.at), h("code", { class: "id" }, l.batchId), count(l.count), count(l.attempts), l.error,
        h("button", { type: "button", "aria-label": `Replay ${l.batchId}`,
          onclick: (event) => replay(event.currentTarget, id, l.batchId, status, again) }, "Replay")]))
      : h("p", { class: "state empty" }, "No dead letter."),
    resendForm(id),
  );
}

// Queue the replay, then look again once a second until the receiver has taken the batch.
async function replay(button, id, batchId, status, again) {
  button.disabled = true;
  try {
    const { replayDeadLetter } = await graphql(REPLAY, { batchId });
    expect(replayDeadLetter, "DeadLetterReplayQueued");
    status.textContent = `Replay of ${batchId} queued: the gateway sends it under the same batch id.`;
  } catch (error) {
    status.replaceChildren(errorLine(error));
    button.disabled = false;
    return;
  }
  for (let check = 0; check < REPLAY_CHECKS && button.isConnected; check++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const { destination } = await graphql(DETAIL, { id }).catch(() => ({ destination: null }));
    if (destination && !destination.deadLetters.deadLetters.some((l) => l.batchId === batchId)) {
      return again(`Replayed ${batchId}: the receiver took it.`);
    }
  }
  if (button.isConnected) await again(`Replay of ${batchId} queued; not acknowledged yet.`);
}

function resendForm(id) {
  const from = h("input", { name: "from", type: "datetime-local", required: true });
  const to = h("input", { name: "to", type: "datetime-local", required: true });
  const done = h("p", { role: "status", class: "ok" });
  const form = h("form", { "aria-label": "Resend a time range" },
    h("h4", {}, "Resend a time range"),
    h("p", { class: "help" }, "The changes dated in this range (shop time) are sent again, under new batch ids."),
    field("From", from), field("To", to),
    h("button", { type: "submit" }, "Resend"), done);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    done.textContent = "";
    try {
      const { resendDestinationRange } = await graphql(RESEND,
        { id, from: fromShopTime(from.value), to: fromShopTime(to.value) });
      expect(resendDestinationRange, "DestinationSendQueued");
      done.textContent = "Resend queued: the gateway sends these changes again shortly.";
    } catch (error) {
      formError(form, error);
    }
  });
  return form;
}

const listOf = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

function createForm(card, created) {
  const input = (name, attributes = {}) => h("input", { name, ...attributes });
  const kinds = h("select", { name: "kinds", multiple: true, size: 4 },
    KINDS.map((k) => h("option", { value: k }, k.toLowerCase().replaceAll("_", " "))));
  const secret = h("div", { role: "status", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "stacked", "aria-label": "Define a destination" },
    field("Id", input("id", { required: true, placeholder: "esp-newsletter" })),
    field("Name", input("name", { required: true, placeholder: "E-mail service: newsletter" })),
    field("URL", input("url", { required: true, type: "url", placeholder: "hooks.example.com/profiles" })),
    field("Consent purpose", input("consentPurpose", { required: true, placeholder: "email_marketing" })),
    field("Segments (comma-separated)", input("segments", { placeholder: "frequent-returners, vip" })),
    h("label", {}, h("input", { type: "checkbox", name: "tiers" }), " tier changes"),
    field("Extensions (comma-separated)", input("extensions")),
    field("Other changes", kinds),
    field("Personal fields (comma-separated)", input("fields", { placeholder: "identities, traits.country" })),
    h("label", {}, h("input", { type: "checkbox", name: "hashIdentifiers" }),
      " hashed e-mail and phone (SHA-256), for ad platforms"),
    h("div", { class: "row" },
      field("Messages per request", input("maxBatch", { type: "number", min: 1, max: 500, value: 100 })),
      field("Longest wait (s)", input("maxWaitSeconds", { type: "number", min: 0, max: 300, step: "any", value: 1 })),
      field("Requests per second", input("ratePerSecond", { type: "number", min: 0, step: "any", value: 10 }))),
    h("p", {}, h("button", { type: "submit" }, "Define destination")),
    secret,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    secret.replaceChildren();
    const data = new FormData(form);
    const destination = {
      id: data.get("id").trim(),
      name: data.get("name"),
      url: data.get("url").trim(),
      consentPurpose: data.get("consentPurpose").trim(),
      send: {
        segments: listOf(data.get("segments")),
        tiers: data.get("tiers") === "on",
        extensions: listOf(data.get("extensions")),
        kinds: data.getAll("kinds"),
      },
      fields: listOf(data.get("fields")),
      hashIdentifiers: data.get("hashIdentifiers") === "on",
      maxBatch: Number(data.get("maxBatch")),
      maxWaitSeconds: Number(data.get("maxWaitSeconds")),
      ratePerSecond: Number(data.get("ratePerSecond")),
    };
    try {
      const { createDestination } = await graphql(CREATE, { input: destination });
      const done = expect(createDestination, "DestinationCreated");
      secret.replaceChildren(h("div", { class: "secret" },
        h("p", { class: "ok" }, `Destination ${done.destination.id} defined and enabled.`),
        h("p", {}, "Its signing secret, shown only now: give it to the receiver, which verifies every request with it."),
        h("code", { class: "id", "data-secret": "" }, done.secret)));
      await created(done.destination.id);
    } catch (error) {
      formError(form, error, (path) => path.replace(/^input\.(send\.)?/, "").split(/[.[]/)[0]);
    }
  });
  card.replaceChildren(h("h3", { id: "d-create" }, "Define a destination"), form);
}
