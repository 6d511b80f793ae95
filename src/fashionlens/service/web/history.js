// History: past analyses, newest first, filtered by a garment's label or colour; each opens as in Analyse.

import { api, explain, imageUrl, showImage } from "./api.js";
import { busy, formatTime, h, hashFor, pagerButtons, replace } from "./dom.js";

const PAGE = 20;

export async function historyView(main, params) {
  const label = params.get("label") || "";
  const colour = params.get("color") || "";
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const error = h("div", { class: "error", role: "alert" });
  const summary = h("p", { class: "summary", id: "history-summary", "aria-live": "polite" });
  const list = h("ol", { class: "history-list", id: "history-list", "aria-label": "Past analyses" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  const labelInput = h("input", { id: "history-label", name: "label", value: label, placeholder: "e.g. dress" });
  const colourInput = h("input", { id: "history-color", name: "color", value: colour, placeholder: "e.g. red" });
  const go = (changes) => { location.hash = hashFor("history", new URLSearchParams({ label, color: colour, offset: "0", ...changes })); };
  const form = h("form", { class: "filters row", role: "search", "aria-label": "Filter the history" },
    h("div", { class: "field" }, h("label", { for: "history-label" }, "Garment label"), labelInput),
    h("div", { class: "field" }, h("label", { for: "history-color" }, "Colour"), colourInput),
    h("button", { type: "submit" }, "Filter"), h("a", { class: "button secondary", href: "#/history" }, "Clear"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go({ label: labelInput.value.trim().toLowerCase(), color: colourInput.value.trim().toLowerCase() });
  });
  replace(main, h("section", { "aria-labelledby": "history-title" },
    h("h1", { id: "history-title" }, "History"), form, error, summary, list, pager));

  replace(list, busy("Loading the history…"));
  const query = new URLSearchParams({ limit: PAGE, offset });
  if (label) query.set("label", label);
  if (colour) query.set("color", colour);
  try {
    const page = await api(`/v1/analyses?${query}`);
    summary.textContent = page.total
      ? `Analyses ${offset + 1}–${offset + page.items.length} of ${page.total}, newest first`
      : label || colour ? "No analysis matches these filters." : "No photo has been analysed yet: analyse one first.";
    replace(list, page.items.map((a) => {
      const labels = [...new Set(a.items.map((g) => g.label))];
      return h("li", {}, h("a", { href: `#/analyses/${a.id}`, dataset: { id: a.id } },
        showImage(h("img", { loading: "lazy", width: 72, height: 72, alt: "" }), imageUrl("analyses", a.id, a.sha256, 128)),
        h("div", {}, h("strong", {}, labels.length ? labels.join(", ") : "nothing found"),
          h("div", { class: "meta" }, `#${a.id} · ${a.source} · ${formatTime(a.created_at)} · ${a.items.length} garment${a.items.length === 1 ? "" : "s"}`))));
    }));
    pagerButtons(pager, { offset, limit: PAGE, total: page.total, go, labels: ["← Newer", "Older →"] });
  } catch (err) {
    replace(list);
    replace(error, explain(err));
  }
}
