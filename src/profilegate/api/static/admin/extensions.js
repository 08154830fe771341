// The extension catalogue, and defining a new entry.
import { expect, graphql } from "./api.js";
import { clearFormErrors, empty, failed, field, formError, h, loading, table } from "./ui.js";

const LIST = "{ extensionDefinitions { name description partnerSettable defaultLifetimeDays } }";
const DEFINE = `mutation($input: DefineExtensionInput!) { defineExtension(input: $input) {
  __typename ... on ExtensionDefined { outcome } ... on InvalidInputError { field message } } }`;

export async function extensionsPage(container) {
  const list = h("div", { class: "card" });
  const form = h(
    "form",
    { class: "card", "aria-label": "Define an extension" },
    h("h3", {}, "Define an extension"),
    field("Name", h("input", { name: "name", required: true, placeholder: "no-reward" })),
    field("Description", h("input", { name: "description", required: true, size: 40 })),
    field("Default lifetime (days)", h("input", { name: "defaultLifetimeDays", type: "number", min: 1 })),
    h("label", {}, h("input", { type: "checkbox", name: "partnerSettable" }), " partners may set it"),
    h("button", { type: "submit" }, "Define"),
    h("p", { role: "status", class: "ok" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const data = new FormData(form);
    const days = data.get("defaultLifetimeDays");
    const input = {
      name: data.get("name"),
      description: data.get("description"),
      partnerSettable: data.get("partnerSettable") === "on",
      defaultLifetimeDays: days ? Number(days) : null,
    };
    try {
      const { defineExtension } = await graphql(DEFINE, { input });
      const done = expect(defineExtension, "ExtensionDefined");
      form.querySelector("[role=status]").textContent = `${input.name}: ${done.outcome.toLowerCase()}`;
      await show(list);
    } catch (error) {
      formError(form, error);
    }
  });
  container.append(h("h2", {}, "Extensions"), h("div", { class: "grid" }, list, form));
  await show(list);
}

async function show(list) {
  loading(list, "the catalogue");
  try {
    const { extensionDefinitions } = await graphql(LIST);
    if (!extensionDefinitions.length) return empty(list, "No extension is defined yet.");
    list.replaceChildren(
      h("h3", {}, "Catalogue"),
      table(
        ["Name", "Description", "Partners", "Default lifetime"],
        extensionDefinitions.map((d) => [
          d.name,
          d.description,
          d.partnerSettable ? "may set" : "no",
          d.defaultLifetimeDays ? `${d.defaultLifetimeDays} days` : "never expires",
        ]),
      ),
    );
  } catch (error) {
    failed(list, error);
  }
}
