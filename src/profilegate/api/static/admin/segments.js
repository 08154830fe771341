// Segments: the list with sizes, and an editor that checks the rule while typing (the
// parser's line and column marked under the line they name), previews its size and members,
// saves and deletes.
import { expect, graphql } from "./api.js";
import { ask } from "./dialog.js";
import { clearFormErrors, empty, errorLine, failed, field, formError, h, loading, table } from "./ui.js";

const LIST = "{ segments { key name rule size maintainsExtension } }";
const PREVIEW = `query($rule: String!, $key: String!) { previewSegment(rule: $rule, key: $key, sample: 5) {
  __typename ... on SegmentPreview { size sample { id identities { type value } } }
  ... on InvalidRuleError { message field line column } ... on SegmentChainError { message field chain }
  ... on InvalidInputError { message field } } }`;
const SAVE = `mutation($input: SaveSegmentInput!) { saveSegment(input: $input) {
  __typename ... on SegmentSaved { created segment { key size } }
  ... on InvalidRuleError { message field line column } ... on SegmentChainError { message field }
  ... on InvalidInputError { message field } ... on UnknownExtensionError { message } } }`;
const DELETE = `mutation($key: String!) { deleteSegment(key: $key) {
  __typename ... on SegmentDeleted { deleted } ... on InvalidInputError { message field } } }`;
const TYPING_PAUSE_MS = 250;

export async function segmentsPage(container) {
  const list = h("section", { class: "card", "aria-labelledby": "s-list" });
  const editor = h("section", { class: "card", "aria-labelledby": "s-editor" });
  container.append(h("h2", {}, "Segments"), h("div", { class: "grid" }, list, editor));
  const open = (segment) => edit(editor, segment, () => showList(list, open));
  open(null);
  await showList(list, open);
}

async function showList(list, open) {
  const heading = h("h3", { id: "s-list" }, "All segments");
  list.replaceChildren(heading, h("p", { class: "state", role: "status" }, "Loading segments…"));
  try {
    const { segments } = await graphql(LIST);
    const fresh = h("button", { type: "button", class: "secondary", onclick: () => open(null) }, "New segment");
    if (!segments.length) return list.replaceChildren(heading, h("p", { class: "state empty" }, "No segment yet."), fresh);
    list.replaceChildren(heading, table(
      ["Segment", "Members", "Rule"],
      segments.map((s) => [
        h("button", { type: "button", class: "secondary", onclick: () => open(s) }, s.name),
        h("span", { "data-segment-size": s.key }, String(s.size)),
        h("code", {}, s.rule),
      ]),
    ), fresh);
  } catch (error) {
    list.replaceChildren(heading, errorLine(error));
  }
}

function edit(editor, segment, saved) {
  const rule = h("textarea", { name: "rule", rows: 6, spellcheck: "false", required: true,
    "aria-describedby": "s-check" }, segment?.rule ?? "");
  const key = h("input", { name: "key", required: true, value: segment?.key ?? "", readonly: !!segment,
    placeholder: "frequent-returner" });
  const name = h("input", { name: "name", required: true, value: segment?.name ?? "" });
  const check = h("div", { id: "s-check", role: "status", "aria-live": "polite" });
  const sample = h("div");
  const form = h(
    "form",
    { class: "stacked", "aria-label": "Segment editor" },
    field("Key", key), field("Name", name), field("Rule", rule), check, sample,
    h("p", {}, h("button", { type: "submit" }, "Save segment"), " ",
      segment ? h("button", { type: "button", class: "danger", onclick: () => remove() }, "Delete segment") : null),
  );
  const remove = async () => {
    const sure = await ask({ title: `Delete segment ${segment.key}`, confirm: "Delete segment", danger: true,
      message: `${segment.name} and its membership records are deleted; the profiles in it stay.` });
    if (sure === null) return;
    try {
      const { deleteSegment } = await graphql(DELETE, { key: segment.key });
      expect(deleteSegment, "SegmentDeleted");
      edit(editor, null, saved);
      saved();
    } catch (error) {
      formError(form, error);
    }
  };
  let timer = null;
  let asked = 0;
  const preview = async () => {
    const text = rule.value;
    const mine = ++asked;
    if (!text.trim()) {
      rule.removeAttribute("aria-invalid");
      check.replaceChildren(h("p", { class: "state empty" }, "Write a rule to see its members."));
      sample.replaceChildren();
      return;
    }
    check.replaceChildren(h("p", { class: "state" }, "Checking…"));
    try {
      const { previewSegment: answer } = await graphql(PREVIEW, { rule: text, key: key.value || "preview" });
      if (mine !== asked) return; // a later keystroke asked again
      if (answer.__typename === "SegmentPreview") {
        rule.removeAttribute("aria-invalid");
        check.replaceChildren(h("p", { class: "ok", "data-preview-size": answer.size },
          `Valid rule · ${answer.size} member${answer.size === 1 ? "" : "s"} now`));
        sample.replaceChildren(answer.sample.length
          ? h("div", {}, h("h4", {}, "Sample members"), h("ul", {}, answer.sample.map((p) =>
            h("li", {}, p.identities.map((i) => i.value).join(", ") || p.id))))
          : h("p", { class: "state empty" }, "No member now."));
      } else {
        rule.setAttribute("aria-invalid", "true");
        sample.replaceChildren();
        check.replaceChildren(answer.line ? marker(text, answer) : errorLine(answer));
      }
    } catch (error) {
      if (mine === asked) failed(check, error);
    }
  };
  rule.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(preview, TYPING_PAUSE_MS);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const input = { key: key.value.trim(), name: name.value, rule: rule.value,
      maintainsExtension: segment?.maintainsExtension ?? null };
    try {
      const { saveSegment } = await graphql(SAVE, { input });
      if (saveSegment.__typename === "InvalidRuleError") return check.replaceChildren(marker(rule.value, saveSegment));
      const done = expect(saveSegment, "SegmentSaved");
      check.replaceChildren(h("p", { class: "ok" },
        `${done.created ? "Created" : "Saved"} ${done.segment.key} · ${done.segment.size} members`));
      saved();
    } catch (error) {
      formError(form, error);
    }
  });
  editor.replaceChildren(h("h3", { id: "s-editor" }, segment ? `Edit ${segment.key}` : "New segment"), form);
  preview();
}

// The rule's line the parser named, with a caret under its column; of a long line, the part
// around the column (the line and its caret scroll together when even that is too wide).
const BEFORE_CARET = 24;
function marker(text, error) {
  const line = text.split("\n")[error.line - 1] ?? "";
  const reason = error.message.replace(/^.*?line \d+, column \d+: /, ""); // the place is said once
  const start = Math.max(0, error.column - 1 - BEFORE_CARET);
  const shown = `${start ? "…" : ""}${line.slice(start)}`;
  const caret = Math.max(0, error.column - 1 - start) + (start ? 1 : 0);
  return h("div", { class: "marker", role: "alert", "data-line": error.line, "data-column": error.column },
    h("div", {}, h("strong", {}, `Line ${error.line}, column ${error.column}: `), reason),
    h("div", { class: "code-window" },
      h("div", { class: "code" }, shown),
      h("div", { class: "code caret", "aria-hidden": "true" }, `${" ".repeat(caret)}^`)));
}
