// Building the page from data: every text goes through textContent, never innerHTML, so names, file names and
// attribute values from the catalogue can never become markup.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") for (const [p, v] of Object.entries(value)) el.style.setProperty(p, v);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const percent = (fraction) => `${Math.round(fraction * 100)}%`;
export const score = (value) => Number(value).toFixed(2);

// One colour per class name: the detector's classes in their own order, anything else by a stable hash.
const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#0f9b9b", "#d6338a", "#7a8c00",
                 "#9a6324", "#800000", "#000075", "#5f6b7a"];
let known = [];
export function setClassOrder(classes) { known = classes || []; }
export function classColour(label) {
  const at = known.indexOf(label);
  if (at >= 0) return PALETTE[at % PALETTE.length];
  let hash = 0;
  for (const ch of String(label)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

export function busy(text) { return h("p", { class: "busy", role: "status" }, text); }

// Read a #/view?key=value hash into its parts.
export function parseHash(hash) {
  const [path, query = ""] = hash.replace(/^#\/?/, "").split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query) };
}

export function hashFor(view, params) {
  const query = new URLSearchParams([...params].filter(([, v]) => v !== "" && v !== null && v !== undefined));
  const text = query.toString();
  return `#/${view}${text ? `?${text}` : ""}`;
}

export function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

// Previous and next buttons for a paged list (`go` opens another offset), with anything to show between them.
export function pagerButtons(nav, { offset, limit, total, go, labels: [back, forward] }, ...between) {
  return replace(nav,
    h("button", { type: "button", class: "secondary", disabled: offset === 0, onclick: () => go({ offset: String(Math.max(0, offset - limit)) }) }, back),
    between,
    h("button", { type: "button", class: "secondary", disabled: offset + limit >= total, onclick: () => go({ offset: String(offset + limit) }) }, forward));
}
