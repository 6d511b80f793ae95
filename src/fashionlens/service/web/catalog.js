// Catalogue: a filtered, paged grid of items; one item with its attributes and its own similar items; adding
// (upload with metadata) and deleting, which need a read-write token when the server has tokens.

import { api, explain, imageUrl, showImage } from "./api.js";
import { colourList } from "./analyse.js";
import { busy, h, hashFor, pagerButtons, replace, score } from "./dom.js";

const PAGE_SIZES = [24, 48, 100];

let facetsCache = null;
async function facets(refresh = false) {
  if (!facetsCache || refresh) facetsCache = api("/v1/facets?limit=200").then((d) => d.facets).catch((e) => { facetsCache = null; throw e; });
  return facetsCache;
}

function options(values, current, none) {
  return [h("option", { value: "" }, none),
    ...values.map((f) => h("option", { value: f.value, selected: f.value === current }, `${f.value} (${f.count})`))];
}

export async function catalogView(main, params) {
  const category = params.get("category") || "";
  const colour = params.get("color") || "";
  const where = params.get("where") || "";
  const text = params.get("q") || "";
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const limit = PAGE_SIZES.includes(Number(params.get("limit"))) ? Number(params.get("limit")) : PAGE_SIZES[0];
  const [whereKey = "", whereValue = ""] = where.includes("=") ? where.split(/=(.*)/s) : ["", ""];

  const error = h("div", { class: "error", role: "alert" });
  const summary = h("p", { class: "summary", id: "catalog-summary", "aria-live": "polite" });
  const grid = h("ul", { class: "grid", id: "catalog-grid", "aria-label": "Catalogue items" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  const categorySelect = h("select", { id: "filter-category", name: "category" }, h("option", { value: "" }, "any"));
  const colourSelect = h("select", { id: "filter-color", name: "color" }, h("option", { value: "" }, "any"));
  const keySelect = h("select", { id: "filter-key", name: "key" }, h("option", { value: "" }, "any attribute"));
  const valueInput = h("input", { id: "filter-value", name: "value", list: "filter-values", value: whereValue, placeholder: "value" });
  const valueList = h("datalist", { id: "filter-values" });
  const sizeSelect = h("select", { id: "filter-limit", name: "limit" },
    PAGE_SIZES.map((n) => h("option", { value: String(n), selected: n === limit }, String(n))));
  const filters = h("form", { class: "filters row", role: "search", "aria-label": "Filter the catalogue" },
    h("div", { class: "field" }, h("label", { for: "filter-category" }, "Category"), categorySelect),
    h("div", { class: "field" }, h("label", { for: "filter-color" }, "Colour"), colourSelect),
    h("div", { class: "field" }, h("label", { for: "filter-key" }, "Attribute"), keySelect),
    h("div", { class: "field" }, h("label", { for: "filter-value" }, "Value"), valueInput, valueList),
    h("div", { class: "field" }, h("label", { for: "filter-limit" }, "Per page"), sizeSelect),
    h("button", { type: "submit" }, "Filter"),
    h("a", { class: "button secondary", href: "#/catalog" }, "Clear"));
  const textInput = h("input", { type: "search", id: "text-query", name: "q", value: text,
    placeholder: "e.g. navy check shirt men", "aria-describedby": "text-query-help" });
  const textForm = h("form", { class: "filters row", id: "text-search", role: "search", "aria-label": "Search the catalogue by words" },
    h("div", { class: "field" }, h("label", { for: "text-query" }, "Search by words"), textInput,
      h("small", { id: "text-query-help", class: "muted" }, "Needs a text model (serve --text-model); the filters below apply too.")),
    h("button", { type: "submit" }, "Search"));
  const go = (changes) => {
    const next = new URLSearchParams({ q: text, category, color: colour, where, limit: String(limit), offset: "0", ...changes });
    location.hash = hashFor("catalog", next);
  };
  textForm.addEventListener("submit", (event) => {
    event.preventDefault();
    go({ q: textInput.value.trim() });
  });
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = keySelect.value;
    const value = valueInput.value.trim();
    go({ category: categorySelect.value, color: colourSelect.value, where: key && value ? `${key}=${value}` : "",
         limit: sizeSelect.value });
  });
  categorySelect.addEventListener("change", () => filters.requestSubmit());
  colourSelect.addEventListener("change", () => filters.requestSubmit());
  sizeSelect.addEventListener("change", () => filters.requestSubmit());

  replace(main, h("section", { class: "catalog", "aria-labelledby": "catalog-title" },
    h("h1", { id: "catalog-title" }, "Catalogue"), textForm, filters, error, summary, grid, pager, addForm()));

  facets().then((all) => {
    categorySelect.append(...options(all.category || [], category, "any").slice(1));
    colourSelect.append(...options(all.color || [], colour, "any").slice(1));
    const keys = Object.keys(all).filter((k) => k !== "category" && k !== "color");
    keySelect.append(...keys.map((k) => h("option", { value: k, selected: k === whereKey }, k)));
    const fillValues = () => replace(valueList, (all[keySelect.value] || []).map((f) => h("option", { value: f.value })));
    keySelect.addEventListener("change", fillValues);
    fillValues();
  }).catch((err) => replace(error, explain(err)));

  if (text) {
    await textResults(text, { category, colour, whereKey, whereValue, limit }, { summary, grid, error });
    return;
  }
  replace(grid, busy("Loading items…"));
  const query = new URLSearchParams({ limit, offset });
  if (category) query.set("category", category);
  if (colour) query.set("color", colour);
  if (where) query.set("where", where);
  try {
    const page = await api(`/v1/items?${query}`);
    summary.textContent = page.total
      ? `Items ${offset + 1}–${offset + page.items.length} of ${page.total}`
      : "No item matches these filters.";
    summary.dataset.total = page.total;
    replace(grid, page.items.map((item) => tile(item, colourNames(item).join(", "))));
    const pages = Math.max(1, Math.ceil(page.total / limit));
    const current = Math.floor(offset / limit) + 1;
    pagerButtons(pager, { offset, limit, total: page.total, go, labels: ["← Previous", "Next →"] },
      h("span", {}, `Page ${current} of ${pages}`));
  } catch (err) {
    replace(grid);
    replace(error, explain(err));
  }
}

// the items best matching `text` (POST /v1/search {text}), under the same filters as the grid
async function textResults(text, { category, colour, whereKey, whereValue, limit }, { summary, grid, error }) {
  replace(grid, busy("Searching…"));
  const filters = {};
  if (category) filters.category = category;
  if (colour) filters.color = colour;
  if (whereKey && whereValue) filters[whereKey] = whereValue;
  try {
    const found = await api("/v1/search", { method: "POST", json: { text, top_k: limit, filters } });
    const unknown = found.unknown_words?.length ? ` (words the model does not know, left out: ${found.unknown_words.join(", ")})` : "";
    summary.textContent = found.results.length
      ? `${found.results.length} items best matching “${text}”${unknown}`
      : `No item matches these filters${unknown}.`;
    replace(grid, found.results.map((hit) => tile(hit, `match ${hit.score.toFixed(1)}`)));
  } catch (err) {
    replace(grid);
    replace(error, explain(err));
  }
}

// an item's two main colour names: items carry {name, ...} objects, search hits the names alone
const colourNames = (item) => (item.colors || []).slice(0, 2).map((c) => c.name ?? c);

// one catalogue item in a grid (the catalogue's own, or an item's similar ones), with `detail` under its category
function tile(item, detail) {
  const category = item.attributes?.category || "";
  const title = category || "item";
  const colours = colourNames(item).join(", ");
  return h("li", {}, h("a", { class: "tile", href: `#/items/${item.id}`, dataset: { id: item.id, category } },
    showImage(h("img", { loading: "lazy", width: 256, height: 256, alt: `${title}${colours ? `, ${colours}` : ""} (item ${item.id})` }),
      imageUrl("items", item.id, item.sha256, 256)),
    h("span", { class: "cap" }, title),
    h("span", { class: "sub" }, `#${item.id}${detail ? ` · ${detail}` : ""}`)));
}

function addForm() {
  const error = h("div", { class: "error", role: "alert" });
  const done = h("p", { class: "notice", role: "status" });
  const file = h("input", { type: "file", id: "add-file", name: "file", accept: "image/*", required: true });
  const attributes = h("textarea", { id: "add-attributes", name: "attributes", rows: 3, placeholder: "category=dress\nbrand=Acme" });
  const submit = h("button", { type: "submit" }, "Add to the catalogue");
  const form = h("form", { id: "add-form" },
    h("div", { class: "field" }, h("label", { for: "add-file" }, "Photo"), file),
    h("div", { class: "field" }, h("label", { for: "add-attributes" }, "Attributes, one name=value per line (optional)"), attributes),
    h("div", {}, submit), error, done);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(error);
    replace(done);
    const parsed = {};
    for (const [n, line] of attributes.value.split("\n").entries()) {
      if (!line.trim()) continue;
      const at = line.indexOf("=");
      if (at < 1) { replace(error, `Line ${n + 1} (“${line.trim()}”): write name=value.`); return; }
      parsed[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    const body = new FormData();
    body.append("file", file.files[0]);
    body.append("attributes", JSON.stringify(parsed));
    submit.disabled = true;
    try {
      const item = await api("/v1/items", { method: "POST", form: body });
      facetsCache = null;
      window.dispatchEvent(new Event("fashionlens:changed"));
      replace(done, "Added: ", h("a", { href: `#/items/${item.id}` }, `item ${item.id}`));
      form.reset();
    } catch (err) {
      replace(error, explain(err));
    } finally {
      submit.disabled = false;
    }
  });
  return h("details", { class: "add panel" }, h("summary", {}, "Add an item"), form);
}

export async function itemView(main, id) {
  const body = h("div", {}, busy("Loading the item…"));
  replace(main, h("section", { class: "item" }, h("p", {}, h("a", { href: "#/catalog" }, "← Catalogue")), body));
  let item;
  try {
    item = await api(`/v1/items/${id}`);
  } catch (err) {
    replace(body, h("h1", {}, `Item ${id}`), h("div", { class: "error", role: "alert" }, explain(err)));
    return;
  }
  const a = item.attributes || {};
  const error = h("div", { class: "error", role: "alert" });
  const remove = h("button", { type: "button", class: "danger", id: "delete-item" }, "Delete this item");
  remove.addEventListener("click", async () => {
    if (!confirm(`Delete item ${item.id} from the catalogue?`)) return;
    replace(error);
    remove.disabled = true;
    try {
      await api(`/v1/items/${item.id}`, { method: "DELETE" });
      facetsCache = null;
      window.dispatchEvent(new Event("fashionlens:changed"));
      location.hash = "#/catalog";
    } catch (err) {
      replace(error, explain(err));
      remove.disabled = false;
    }
  });
  const rows = Object.entries(a).map(([key, value]) => {
    const predicted = item.predicted?.[key];
    const given = key in (item.given || {});
    return h("tr", {}, h("th", { scope: "row" }, key), h("td", {}, value),
      h("td", { class: "muted" }, given ? "given" : predicted ? `predicted, ${score(predicted.score)}` : ""));
  });
  const similar = h("ul", { class: "grid small", id: "item-similar", "aria-label": "Similar items" }, busy("Finding similar items…"));
  replace(body,
    h("div", { class: "item-layout" },
      showImage(h("img", { alt: `${a.category || "item"} (item ${item.id})` }), imageUrl("items", item.id, item.sha256, 512)),
      h("div", {},
        h("h1", {}, `${a.category || "Item"} `, h("span", { class: "muted" }, `item ${item.id}`)),
        h("table", { class: "kv" }, h("tbody", {}, rows)),
        h("h4", {}, "Colours"), colourList(item.colors) || h("p", { class: "muted" }, "none recorded"),
        h("p", { class: "muted" }, `From ${item.image}`),
        h("div", { class: "row" }, remove), error)),
    h("h2", {}, "Similar items"), similar);
  try {
    const found = await api("/v1/search", { method: "POST", json: { item_id: item.id, top_k: 12 } });
    replace(similar, found.results.length ? found.results.map((hit) => tile(hit, `similarity ${score(hit.score)}`))
      : h("li", { class: "muted" }, "No other item."));
  } catch (err) {
    replace(similar, h("li", { class: "error", role: "alert" }, explain(err)));
  }
}
