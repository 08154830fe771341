// The audit log, filtered by any of its fields and paged with its cursor.
import { graphql } from "./api.js";
import { empty, failed, field, h, loading, table, when } from "./ui.js";

const PAGE = `query($filter: AuditFilterInput, $after: String) {
  auditLog(filter: $filter, first: 25, after: $after) {
    entries { at actor { name role } action profileId outcome arguments } nextCursor } }`;

export async function auditPage(container) {
  const results = h("div", { class: "card" });
  const filters = ["actor", "action", "profileId", "outcome"];
  const form = h(
    "form",
    { "aria-label": "Filter the audit log" },
    filters.map((name) => field(name === "profileId" ? "Profile id" : name[0].toUpperCase() + name.slice(1),
      h("input", { name }))),
    h("button", { type: "submit" }, "Filter"),
  );
  let cursors = [null];
  const load = async () => {
    const data = new FormData(form);
    const filter = Object.fromEntries(filters.filter((n) => data.get(n)).map((n) => [n, data.get(n)]));
    loading(results, "the audit log");
    try {
      const { auditLog } = await graphql(PAGE, { filter, after: cursors.at(-1) });
      if (!auditLog.entries.length) return empty(results, "No entry matches.");
      const older = h("button", { type: "button", class: "secondary", disabled: !auditLog.nextCursor }, "Older");
      const newer = h("button", { type: "button", class: "secondary", disabled: cursors.length < 2 }, "Newer");
      older.addEventListener("click", () => { cursors.push(auditLog.nextCursor); load(); });
      newer.addEventListener("click", () => { cursors.pop(); load(); });
      results.replaceChildren(
        table(
          ["At", "Actor", "Action", "Profile", "Outcome", "Arguments"],
          auditLog.entries.map((e) => [
            when(e.at), `${e.actor.name} (${e.actor.role})`, e.action, e.profileId ?? "—", e.outcome,
            h("code", {}, JSON.stringify(e.arguments)),
          ]),
        ),
        h("p", {}, newer, " ", older),
      );
    } catch (error) {
      failed(results, error);
    }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); cursors = [null]; load(); });
  container.append(h("h2", {}, "Audit log"), form, results);
  await load();
}
