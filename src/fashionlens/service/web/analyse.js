// Analyse: a photo in (dropped, chosen, pasted or by URL), its garments out as boxes over the photo and cards
// beside it. `renderAnalysis` also draws stored analyses opened from the history.

import { api, explain, imageUrl, showImage } from "./api.js";
import { busy, classColour, formatTime, h, percent, replace, score } from "./dom.js";

export function analyseView(main) {
  const error = h("div", { class: "error", role: "alert" });
  const result = h("div", { class: "result-area" });
  const file = h("input", { type: "file", id: "photo-file", accept: "image/*", "aria-describedby": "drop-hint" });
  const drop = h("div", { class: "drop", id: "drop" },
    h("p", { id: "drop-hint" }, "Drop a photo here, paste one, or choose a file:"),
    h("label", { class: "sr-only", for: "photo-file" }, "Photo to analyse"),
    file);
  const url = h("input", { type: "url", id: "photo-url", name: "url", placeholder: "https://…/photo.jpg", required: true });
  const urlForm = h("form", { class: "url-form", id: "url-form" },
    h("label", { for: "photo-url" }, "…or an image URL"),
    h("div", { class: "row" }, url, h("button", { type: "submit" }, "Analyse")));

  let running = null;
  async function run(send, preview) {
    performance.clearMarks("analyse:start");
    performance.mark("analyse:start");
    running?.abort();
    const controller = (running = new AbortController());
    replace(error);
    replace(result, busy("Analysing…"));
    urlForm.querySelector("button").disabled = true;
    try {
      const analysis = await send(controller.signal);
      if (controller.signal.aborted) return;
      history.replaceState(null, "", `#/analyses/${analysis.id}`);
      window.dispatchEvent(new Event("fashionlens:changed"));
      renderAnalysis(result, analysis, preview || imageUrl("analyses", analysis.id, analysis.sha256, 1024));
      // photo given to boxes on screen, after the next frame is painted (read by benchmarks/web_analyse.py)
      requestAnimationFrame(() => setTimeout(() => performance.measure("analyse:boxes-drawn", "analyse:start")));
    } catch (err) {
      if (controller.signal.aborted) return;
      replace(result);
      replace(error, explain(err));
    } finally {
      if (running === controller) urlForm.querySelector("button").disabled = false;
    }
  }

  function analyseFile(photo) {
    const form = new FormData();
    form.append("file", photo, photo.name || "pasted-image");
    const preview = URL.createObjectURL(photo);
    run((signal) => api("/v1/analyze", { method: "POST", form, signal }), preview);
  }

  file.addEventListener("change", () => file.files[0] && analyseFile(file.files[0]));
  urlForm.addEventListener("submit", (event) => {
    event.preventDefault();
    run((signal) => api("/v1/analyze", { method: "POST", json: { url: url.value.trim() }, signal }));
  });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    const photo = event.dataTransfer.files[0];
    if (photo) analyseFile(photo);
    else replace(error, "Drop an image file (from your computer) onto the box.");
  });
  const onPaste = (event) => {
    const photo = [...(event.clipboardData?.files || [])][0];
    if (photo && document.activeElement !== url) analyseFile(photo);
  };
  document.addEventListener("paste", onPaste);

  replace(main, h("section", { class: "analyse", "aria-labelledby": "analyse-title" },
    h("h1", { id: "analyse-title" }, "Analyse a photo"),
    h("div", { class: "intake" }, drop, urlForm), error, result));
  return () => { running?.abort(); document.removeEventListener("paste", onPaste); };
}

export async function storedAnalysisView(main, id) {
  const area = h("div", { class: "result-area" }, busy("Loading the analysis…"));
  replace(main, h("section", { class: "analyse" }, h("p", {}, h("a", { href: "#/history" }, "← History")),
    h("h1", {}, `Analysis ${id}`), area));
  try {
    const analysis = await api(`/v1/analyses/${id}`);
    renderAnalysis(area, analysis, imageUrl("analyses", analysis.id, analysis.sha256, 1024));
  } catch (err) {
    replace(area, h("div", { class: "error", role: "alert" }, explain(err)));
  }
}

export function renderAnalysis(area, analysis, src) {
  const items = analysis.items;
  const slider = h("input", { type: "range", id: "min-score", min: "0", max: "1", step: "0.01", value: "0" });
  const shown = h("output", { for: "min-score", id: "min-score-value" }, score(0));
  const count = h("span", { class: "count", id: "garment-count", "aria-live": "polite" });
  const names = items.map((g) => g.label).join(", ");
  const img = showImage(h("img", { alt: items.length ? `Analysed photo with ${items.length} garments: ${names}` : "Analysed photo: nothing found",
                                    width: analysis.width, height: analysis.height }), src);
  const boxes = items.map((garment, i) => box(garment, i, analysis));
  items.forEach((garment, i) => {  // a box inside another carries its label inside, so the two labels do not collide
    if (items.some((other, j) => j !== i && contains(other.box, garment.box))) boxes[i].classList.add("inside");
  });
  // labels stack by score, the strongest on top, whatever order the boxes stack in for pointing at them
  [...items.keys()].sort((a, b) => items[a].score - items[b].score)
    .forEach((i, rank) => boxes[i].style.setProperty("--rank", String(rank)));
  const cards = items.map((garment, i) => card(garment, i));
  const { layer, fills } = maskLayer(items, analysis);
  const stage = h("div", { class: "stage", style: { "--ar": analysis.width / analysis.height, "--w": `${analysis.width}px` } },
    img, layer, [...boxes].sort((a, b) => boxArea(b) - boxArea(a)));  // smaller boxes on top, so each keeps a part to point at
  const masksOn = h("input", { type: "checkbox", id: "show-masks", checked: true });
  masksOn.addEventListener("change", () => stage.classList.toggle("boxes-only", !masksOn.checked));

  const link = (i, on) => {
    boxes[i].classList.toggle("active", on);
    cards[i].classList.toggle("active", on);
    fills[i]?.classList.toggle("active", on);
  };
  items.forEach((_, i) => {
    for (const el of [boxes[i], cards[i]]) {
      el.addEventListener("mouseenter", () => link(i, true));
      el.addEventListener("mouseleave", () => link(i, el === document.activeElement || el.contains(document.activeElement)));
      el.addEventListener("focusin", () => link(i, true));
      el.addEventListener("focusout", () => link(i, false));
    }
    boxes[i].addEventListener("click", () => {
      cards[i].scrollIntoView({ block: "nearest", behavior: "smooth" });
      cards[i].querySelector("h3 button").focus({ preventScroll: true });
    });
    cards[i].querySelector("h3 button").addEventListener("click", () => boxes[i].focus());
  });

  const filter = () => {
    const threshold = Number(slider.value);
    let visible = 0;
    items.forEach((garment, i) => {
      const hide = garment.score < threshold;
      boxes[i].hidden = hide;
      cards[i].hidden = hide;
      fills[i]?.toggleAttribute("hidden", hide);
      visible += hide ? 0 : 1;
    });
    shown.textContent = score(threshold);
    count.textContent = `${visible} of ${items.length} garment${items.length === 1 ? "" : "s"} shown`;
  };
  slider.addEventListener("input", filter);
  filter();

  const total = analysis.timings_ms?.total;
  replace(area, h("div", { class: "result", "data-analysis-id": analysis.id },
    h("div", { class: "photo-panel" },
      h("div", { class: "toolbar" }, h("label", { for: "min-score" }, "Minimum score"), slider, shown, count,
        layer ? h("label", { class: "toggle" }, masksOn, "Masks") : null),
      h("figure", { class: "photo" }, stage,
        h("figcaption", {}, `${analysis.source} · ${analysis.width}×${analysis.height}`,
          total ? ` · analysed in ${Math.round(total)} ms` : "", analysis.created_at ? ` · ${formatTime(analysis.created_at)}` : ""))),
    items.length
      ? h("ol", { class: "cards", "aria-label": "Garments found" }, cards)
      : h("p", { class: "muted" }, "No garment was found in this photo.")));
}

const SVG = "http://www.w3.org/2000/svg";

// Each garment's polygons as one outlined path under the box outlines, in the photo's own pixels (the viewBox),
// so they scale with the photo exactly as the boxes do. Null when no garment has a mask.
function maskLayer(items, analysis) {
  if (!items.some((g) => g.polygons?.length)) return { layer: null, fills: [] };
  const layer = document.createElementNS(SVG, "svg");
  layer.setAttribute("class", "masks");
  layer.setAttribute("viewBox", `0 0 ${analysis.width} ${analysis.height}`);
  layer.setAttribute("preserveAspectRatio", "none");
  layer.setAttribute("aria-hidden", "true");
  const fills = items.map((garment, i) => {
    if (!garment.polygons?.length) return null;
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", garment.polygons.map((p) => {
      const points = [];
      for (let k = 0; k + 1 < p.length; k += 2) points.push(`${p[k]} ${p[k + 1]}`);
      return `M${points.join("L")}Z`;
    }).join(""));
    path.setAttribute("id", `mask-${i}`);
    path.setAttribute("class", "mask");
    path.setAttribute("data-index", String(i));
    path.style.setProperty("--c", classColour(garment.label));
    layer.append(path);
    return path;
  });
  return { layer, fills };
}

const COLOUR_SOURCE = { mask: "colours from the garment's own pixels", box: "colours from its box (no mask)",
                        image: "colours from the whole photo" };

const contains = (outer, inner) => outer[0] <= inner[0] + 2 && outer[1] <= inner[1] + 2 && outer[2] >= inner[2] - 2
  && outer[3] >= inner[3] - 2 && (outer[2] - outer[0]) * (outer[3] - outer[1]) > (inner[2] - inner[0]) * (inner[3] - inner[1]);
const boxArea = (el) => parseFloat(el.style.width) * parseFloat(el.style.height);

function box(garment, i, analysis) {
  const [x1, y1, x2, y2] = garment.box;
  const label = garment.whole_image ? `${garment.label} (whole photo)` : garment.label;
  return h("button", {
    type: "button", class: `box${garment.whole_image ? " whole" : ""}`, id: `box-${i}`,
    dataset: { index: i, label: garment.label, score: garment.score },
    "aria-label": `${label}, score ${score(garment.score)}: show its card`,
    style: {
      "--c": classColour(garment.label),
      left: `${(100 * x1) / analysis.width}%`, top: `${(100 * y1) / analysis.height}%`,
      width: `${(100 * (x2 - x1)) / analysis.width}%`, height: `${(100 * (y2 - y1)) / analysis.height}%`,
    },
  }, h("span", { "aria-hidden": "true" }, `${garment.label} ${score(garment.score)}`));
}

function card(garment, i) {
  const attributes = Object.entries(garment.attributes || {});
  return h("li", { class: "card", id: `card-${i}`, dataset: { index: i }, style: { "--c": classColour(garment.label) } },
    h("h3", {}, h("button", { type: "button", "aria-label": `${garment.label}: show its box` }, garment.label),
      h("span", { class: "muted" }, garment.whole_image ? "whole photo · " : "",
        garment.source === "parser" ? "found by the parser · " : "", `score ${score(garment.score)}`)),
    attributes.length ? h("dl", { class: "attrs" }, attributes.map(([task, labels]) => [
      h("dt", {}, task),
      h("dd", {}, labels.map((l) => h("span", { class: "chip" }, l.label, h("span", { class: "s" }, score(l.score))))),
    ])) : null,
    colourList(garment.colors),
    garment.color_source ? h("p", { class: "muted colour-source", dataset: { source: garment.color_source } },
      COLOUR_SOURCE[garment.color_source] || garment.color_source) : null,
    garment.disputed?.length ? h("p", { class: "muted disputed" }, garment.disputed.map((d) =>
      `${d.model} said ${d.task} ${d.label} (${score(d.score)}), which does not fit a ${garment.label}`).join("; ")) : null,
    garment.similar?.length ? [h("h4", {}, "Similar in the catalogue"),
      h("ul", { class: "similar" }, garment.similar.map((hit) => h("li", {},
        h("a", { href: `#/items/${hit.id}`, title: `item ${hit.id}, similarity ${score(hit.score)}` },
          showImage(h("img", { loading: "lazy", width: 72, height: 72, alt: `${hit.attributes?.category || "item"} (item ${hit.id})` }),
            imageUrl("items", hit.id, hit.sha256, 128)),
          score(hit.score)))))] : null);
}

export function colourList(colours) {
  if (!colours?.length) return null;
  return h("ul", { class: "colors", "aria-label": "Colours" }, colours.map((c) => h("li", { title: c.family },
    h("span", { class: "sw", style: { background: c.hex || `rgb(${(c.rgb || []).join(",")})` }, "aria-hidden": "true" }),
    `${c.name} ${percent(c.fraction)}`)));
}
