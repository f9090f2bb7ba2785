// Small DOM helpers shared by the three pages.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  return element;
}

export { svg };

export function money(value) {
  if (!value) return "";
  return new Intl.NumberFormat("ja-JP", { style: "currency", currency: value.currency || "JPY" })
    .format(value.amount);
}

export function price(product) {
  const sale = product.sale_price && product.sale_price.amount ? product.sale_price : null;
  if (!sale) return h("span", { class: "price" }, money(product.base_price));
  return h(
    "span",
    { class: "price" },
    h("del", { "aria-label": "was" }, money(product.base_price)),
    " ",
    h("strong", {}, money(sale)),
  );
}

function hue(text) {
  let hash = 0;
  for (const char of text) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return hash % 360;
}

// Drawn here, never fetched: images on other hosts are not loaded (the
// Content-Security-Policy allows this origin only).
export function productImage(product, size = "card") {
  const image = (product.images || [])[0];
  const alt = image?.alt_text || product.name;
  if (image) {
    try {
      const url = new URL(image.url, location.origin);
      if (url.origin === location.origin) return h("img", { class: `image ${size}`, src: url.href, alt });
    } catch {
      /* not a URL: draw the placeholder */
    }
  }
  const colour = hue(product.id || product.name);
  const picture = svg("svg", { viewBox: "0 0 160 120", class: `image ${size}`, role: "img", "aria-label": alt });
  picture.append(
    svg("rect", { width: 160, height: 120, fill: `hsl(${colour} 55% 88%)` }),
    svg("circle", { cx: 122, cy: 30, r: 18, fill: `hsl(${(colour + 40) % 360} 60% 70%)` }),
    svg("path", { d: "M0 120 L55 55 L95 95 L120 70 L160 120 Z", fill: `hsl(${colour} 45% 55%)` }),
  );
  const initial = svg("text", { x: 18, y: 44, "font-size": 30, fill: `hsl(${colour} 40% 30%)` });
  initial.textContent = [...product.name][0] || "?";
  picture.append(initial);
  return picture;
}

let noticeTimer;

export function notify(message, kind = "info") {
  const box = document.getElementById("notice");
  box.replaceChildren(h("p", { class: `notice ${kind}` }, message));
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => box.replaceChildren(), 8000);
}

// Runs an action, showing an API error as a message instead of throwing.
export async function attempt(action, where) {
  try {
    return await action();
  } catch (error) {
    const text = error.human || error.message || String(error);
    if (where) where.replaceChildren(h("p", { class: "error", role: "alert" }, text));
    else notify(text, "error");
    return undefined;
  }
}

export function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status.toLowerCase()}`, "data-status": status }, status);
}

export function pager(page, go) {
  if (!page || page.total_pages <= 1) return ""; // nothing to page through
  const current = page.current_page;
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    h("button", { type: "button", disabled: current <= 1, onclick: () => go(current - 1) }, "← Previous"),
    h("span", {}, ` Page ${current} of ${page.total_pages} `),
    h("button", { type: "button", disabled: current >= page.total_pages, onclick: () => go(current + 1) }, "Next →"),
  );
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}
