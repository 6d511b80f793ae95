// The page's entry point: a hash router over the views, the service's status in the header, a banner when
// the server cannot be reached, and the token prompt when the server needs a token.

import { api, token } from "./api.js";
import { analyseView, storedAnalysisView } from "./analyse.js";
import { catalogView, itemView } from "./catalog.js";
import { parseHash, setClassOrder } from "./dom.js";
import { historyView } from "./history.js";

const main = document.getElementById("main");
const status = document.getElementById("status");
const banner = document.getElementById("banner");
const tokenForm = document.getElementById("token-form");
const tokenInput = document.getElementById("token-input");
const tokenNote = document.getElementById("token-note");
const tokenButton = document.getElementById("token-button");
let leave = null;

const routes = [
  [/^analyses\/(\d+)$/, "history", (m) => storedAnalysisView(main, m[1])],
  [/^items\/(\d+)$/, "catalog", (m) => itemView(main, m[1])],
  [/^catalog$/, "catalog", (_, params) => catalogView(main, params)],
  [/^history$/, "history", (_, params) => historyView(main, params)],
  [/^(analyse)?$/, "analyse", () => analyseView(main)],
];

function route() {
  if (location.hash && !location.hash.startsWith("#/")) return; // an in-page link such as "Skip to content"
  const { parts, params } = parseHash(location.hash);
  const path = parts.join("/");
  const [pattern, view, render] = routes.find(([p]) => p.test(path)) || routes[routes.length - 1];
  for (const link of document.querySelectorAll(".top nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (typeof leave === "function") leave();
  leave = null;
  document.title = `fashionlens · ${view === "analyse" ? "Analyse" : view === "catalog" ? "Catalogue" : "History"}`;
  const result = render(path.match(pattern), params);
  if (typeof result === "function") leave = result;
}

function askForToken(note) {
  tokenNote.textContent = note;
  tokenForm.hidden = false;
  tokenInput.focus();
}

tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  token.set(tokenInput.value.trim());
  tokenInput.value = "";
  tokenForm.hidden = true;
  route();
});
document.getElementById("token-forget").addEventListener("click", () => {
  token.set("");
  tokenInput.value = "";
  askForToken("Forgotten. Enter a token to go on.");
});
tokenButton.addEventListener("click", () => askForToken("Kept in this tab only, until you close it."));
window.addEventListener("fashionlens:token-needed", () =>
  askForToken(token.get() ? "The server refused this token: enter another." : "Kept in this tab only, until you close it."));

async function checkHealth() {
  try {
    const health = await api("/v1/health");
    tokenButton.hidden = !health.token_required;
    if (health.token_required && !token.get() && tokenForm.hidden) askForToken("Kept in this tab only, until you close it.");
    status.textContent = `${health.items} items · ${health.analyses} analyses · ${health.database}`;
    status.classList.remove("down");
    banner.hidden = true;
  } catch (err) {
    status.textContent = "server unreachable";
    status.classList.add("down");
    banner.textContent = `${err.message} The page keeps trying every 10 seconds.`;
    banner.hidden = false;
  }
}

window.addEventListener("hashchange", () => { route(); main.focus({ preventScroll: true }); });
api("/v1/models").then((m) => setClassOrder(m.models?.detector?.classes)).catch(() => {}).finally(route);
window.addEventListener("fashionlens:changed", checkHealth);
checkHealth();
setInterval(checkHealth, 10000);
