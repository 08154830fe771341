// In-page dialogs for confirmations and reasons (no window.prompt or confirm): a modal <dialog>
// named by its title and described by its message. Focus goes to the reason, or to Cancel when
// there is only a confirmation; Escape or Cancel closes it answering null; focus then returns
// to what opened it.
import { clearFormErrors, field, formError, h } from "./ui.js";

let dialogCount = 0;

// Resolves to the reason typed (when `reason` labels one), or true, or null when cancelled.
export function ask({ title, message, reason = null, confirm, danger = false }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const id = `dialog-${++dialogCount}`;
    const input = reason ? h("textarea", { name: "reason", rows: 3, required: true }) : null;
    const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
    const form = h(
      "form",
      { class: "stacked", novalidate: true }, // a blank reason is answered in words below
      h("h2", { id: `${id}-title` }, title),
      h("p", { id: `${id}-message` }, message),
      input ? field(reason, input) : null,
      h("p", { class: "actions" }, h("button", { type: "submit", class: danger ? "danger" : null }, confirm), " ", cancel),
    );
    const dialog = h("dialog", { "aria-labelledby": `${id}-title`, "aria-describedby": `${id}-message` }, form);
    let answer = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearFormErrors(form);
      const given = input ? input.value.trim() : true;
      if (!given) return formError(form, { field: "reason", message: "give a reason; it is kept in the audit log" });
      answer = given;
      dialog.close();
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      (opener?.isConnected ? opener : document.getElementById("main"))?.focus();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    (input ?? cancel).focus();
  });
}
