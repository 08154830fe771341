// The console: log in with an admin key (kept in sessionStorage, never in a URL), then one
// page per hash route. Every figure comes from /graphql.
import { graphql, session } from "./api.js";
import { auditPage } from "./audit.js";
import { customerPage } from "./customer.js";
import { destinationsPage } from "./destinations.js";
import { extensionsPage } from "./extensions.js";
import { loyaltyPage } from "./loyalty.js";
import { metricsPage } from "./metrics.js";
import { segmentsPage } from "./segments.js";
import { errorLine } from "./ui.js";

const PAGES = {
  customer: customerPage,
  segments: segmentsPage,
  loyalty: loyaltyPage,
  metrics: metricsPage,
  extensions: extensionsPage,
  destinations: destinationsPage,
  audit: auditPage,
};
const $ = (id) => document.getElementById(id);

async function whoAmI() {
  const { viewer } = await graphql("{ viewer { name role } }");
  if (viewer.role !== "ADMIN") throw new Error(`the key '${viewer.name}' is a ${viewer.role} key, not an admin key`);
  return viewer;
}

function loggedOut(message = "") {
  session.clear();
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("page").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("key").focus();
}

async function loggedIn() {
  const viewer = await whoAmI();
  $("who").textContent = `Signed in as ${viewer.name}`;
  $("login").hidden = true;
  $("nav").hidden = false;
  $("logout").hidden = false;
  $("page").hidden = false;
  if (!location.hash) location.hash = "#customer";
  else route();
}

function route() {
  if (!session.key()) return;
  const name = location.hash.slice(1).split("/")[0] || "customer";
  const page = PAGES[name] ?? PAGES.customer;
  document.querySelectorAll("#nav a").forEach((a) => {
    if (a.getAttribute("href") === `#${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  const container = $("page");
  container.replaceChildren();
  Promise.resolve(page(container)).catch((error) => container.replaceChildren(errorLine(error)));
  $("main").focus();
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  session.save($("key").value.trim());
  $("key").value = "";
  try {
    await loggedIn();
  } catch (error) {
    loggedOut(`Not logged in: ${error.message}`);
  }
});
$("logout").addEventListener("click", () => loggedOut());
// The gateway renders data-graphiql="on" only when it serves GraphiQL (never in production).
$("graphiql-link").hidden = document.documentElement.dataset.graphiql !== "on";
window.addEventListener("hashchange", route);

if (session.key()) loggedIn().catch((error) => loggedOut(`Not logged in: ${error.message}`));
else loggedOut();
