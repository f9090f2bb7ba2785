// The seller desk: own products (create, edit, archive, stock), orders to
// ship, the sales ledger and product analytics.

import { currentUser, del, get, post, put } from "./api.js";
import { attempt, field, h, money, notify, pager, price, statusBadge, when } from "./ui.js";

const PRODUCT_STATUSES = ["", "active", "out_of_stock", "archived"];

function yen(input) {
  return { amount: Number(input.value), currency: "JPY" };
}

function productForm(product, onSaved) {
  const name = h("input", { type: "text", required: true, maxlength: 200, value: product?.name || "" });
  const description = h("textarea", { rows: 3, maxlength: 10000 });
  description.value = product?.description || "";
  const base = h("input", { type: "number", min: 0, required: true, value: product?.base_price?.amount ?? "" });
  const sale = h("input", { type: "number", min: 0, value: product?.sale_price?.amount || "" });
  const stock = product ? null : h("input", { type: "number", min: 0, required: true, value: 10 });
  const status = h("div");
  return h(
    "form",
    {
      class: "product-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const body = { name: name.value, description: description.value, base_price: yen(base) };
        if (sale.value) body.sale_price = yen(sale);
        else if (product) body.sale_price = null;
        const saved = product
          ? await attempt(() => put(`/api/v1/products/${product.id}`, body), status)
          : await attempt(() => post("/api/v1/products", { ...body, stock_quantity: Number(stock.value) }), status);
        if (saved) onSaved(saved);
      },
    },
    h("h2", {}, product ? "Edit product" : "New product"),
    field("Name", name),
    field("Description", description),
    field("Price (¥)", base),
    field("Sale price (¥, optional)", sale),
    stock && field("Stock", stock),
    h("button", { type: "submit", class: "primary" }, product ? "Save" : "Create"),
    status,
  );
}

function stockForm(product, onSaved) {
  const quantity = h("input", {
    type: "number",
    min: 0,
    value: product.stock_quantity,
    "aria-label": `Stock of ${product.name}`,
    class: "narrow",
  });
  return h(
    "form",
    {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        const saved = await attempt(() => put(`/api/v1/products/${product.id}/stock`, { quantity: Number(quantity.value) }));
        if (saved) onSaved(saved);
      },
    },
    quantity,
    h("button", { type: "submit" }, "Set stock"),
  );
}

export async function products(main, params) {
  const me = currentUser();
  const page = Number(params.get("page") || 1);
  const only = params.get("status") || "";
  const filter = h(
    "select",
    { onchange: () => (location.hash = `#/products?status=${filter.value}`) },
    PRODUCT_STATUSES.map((s) => h("option", { value: s, selected: s === only }, s || "active and out of stock")),
  );
  const status = h("div");
  main.replaceChildren(
    h("h1", {}, "Your products"),
    h("p", {}, h("a", { href: "#/products/new", class: "button" }, "+ New product")),
    field("Show", filter),
    status,
  );
  const list = await attempt(
    () => get("/api/v1/products", { seller_id: me.sellerId, status: only, page, page_size: 20, sort_by: "name" }),
    status,
  );
  if (!list) return;
  const rows = list.items.map((p) =>
    h(
      "tr",
      {},
      h("td", { lang: "ja" }, p.name),
      h("td", {}, price(p)),
      h("td", {}, stockForm(p, (s) => notify(`Stock of ${p.name}: ${s.available_stock} available, ${s.reserved_stock} reserved.`))),
      h("td", {}, statusBadge(p.status)),
      h(
        "td",
        {},
        h("a", { href: `#/products/${p.id}` }, "Edit"),
        " ",
        p.status !== "archived" &&
          h("button", {
            type: "button",
            class: "link",
            onclick: async () => {
              if (!confirm(`Archive ${p.name}?`)) return;
              if (await attempt(() => del(`/api/v1/products/${p.id}`), status) !== undefined) products(main, params);
            },
          }, "Archive"),
      ),
    ),
  );
  main.append(
    h(
      "table",
      { class: "lines" },
      h("thead", {}, h("tr", {}, ["Product", "Price", "Stock", "Status", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows),
    ),
    pager(list.page, (n) => (location.hash = `#/products?status=${only}&page=${n}`)),
  );
}

export async function editProduct(main, params, id) {
  const status = h("div");
  main.replaceChildren(status);
  const product = id === "new" ? null : await attempt(() => get(`/api/v1/products/${id}`), status);
  if (id !== "new" && !product) return;
  main.replaceChildren(
    productForm(product, (saved) => {
      notify(`Saved ${saved.name}.`);
      location.hash = "#/products";
    }),
  );
}

const NEXT_STEP = { PAID: ["SHIPPED", "Mark shipped"], SHIPPED: ["DELIVERED", "Mark delivered"] };

export async function orders(main, params) {
  const me = currentUser();
  const showing = params.get("status") || "PAID";
  const tabs = h(
    "nav",
    { class: "tabs", "aria-label": "Order status" },
    ["PAID", "SHIPPED", "DELIVERED"].map((s) =>
      h("a", { href: `#/orders?status=${s}`, "aria-current": s === showing ? "page" : false }, s === "PAID" ? "To ship" : s.toLowerCase()),
    ),
  );
  const status = h("div");
  main.replaceChildren(h("h1", {}, "Orders"), tabs, status);
  const list = await attempt(
    () => get("/api/v1/orders", { seller_id: me.sellerId, status: showing, page_size: 50, sort_by: "created_at" }),
    status,
  );
  if (!list) return;
  if (!list.items.length) {
    main.append(h("p", { class: "muted" }, "No orders here."));
    return;
  }
  main.append(
    h(
      "ul",
      { class: "orders" },
      list.items.map((o) => {
        const next = NEXT_STEP[o.status];
        return h(
          "li",
          { dataset: { order: o.id } },
          h("strong", {}, o.order_number),
          " ",
          statusBadge(o.status),
          " ",
          o.items.filter((l) => l.seller_id === me.sellerId).map((l) => `${l.name} × ${l.quantity}`).join(", "),
          " ",
          h("span", { class: "muted" }, when(o.created_at)),
          " ",
          next &&
            h("button", {
              type: "button",
              onclick: async () => {
                const done = await attempt(() => put(`/api/v1/orders/${o.id}/status`, { status: next[0] }), status);
                if (done) {
                  notify(`${o.order_number}: ${done.status}`);
                  orders(main, params);
                }
              },
            }, next[1]),
        );
      }),
    ),
  );
}

export async function ledger(main, params) {
  const page = Number(params.get("page") || 1);
  const status = h("div");
  main.replaceChildren(h("h1", {}, "Sales ledger"), status);
  const body = await attempt(
    () => get("/api/v1/sellers/me/ledger", { page, page_size: 20, descending: true }),
    status,
  );
  if (!body) return;
  main.append(
    h("p", { class: "total" }, "Balance: ", h("strong", {}, money(body.balance))),
    body.entries.length
      ? h(
          "table",
          { class: "lines" },
          h("thead", {}, h("tr", {}, ["When", "Kind", "Order", "Quantity", "Amount"].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            body.entries.map((e) =>
              h("tr", {}, h("td", {}, when(e.occurred_at)), h("td", {}, e.kind), h("td", {}, e.order_id.slice(0, 8)), h("td", {}, String(e.quantity)), h("td", {}, money(e.amount))),
            ),
          ),
        )
      : h("p", { class: "muted" }, "No sales yet."),
    pager(body.page, (n) => (location.hash = `#/ledger?page=${n}`)),
  );
}

export async function analytics(main, params) {
  const page = Number(params.get("page") || 1);
  const status = h("div");
  main.replaceChildren(h("h1", {}, "Product analytics"), status);
  const body = await attempt(
    () => get("/api/v1/sellers/me/analytics", { page, page_size: 20, sort_by: "name" }),
    status,
  );
  if (!body) return;
  main.append(
    h(
      "table",
      { class: "lines" },
      h("thead", {}, h("tr", {}, ["Product", "Views", "Sold", "Orders", "Conversion", "Revenue"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        body.items.map((s) =>
          h(
            "tr",
            {},
            h("td", { lang: "ja" }, s.name),
            h("td", {}, String(s.views)),
            h("td", {}, String(s.paid_quantity)),
            h("td", {}, String(s.paid_orders)),
            h("td", {}, `${(s.conversion * 100).toFixed(1)} %`),
            h("td", {}, money(s.revenue)),
          ),
        ),
      ),
    ),
    pager(body.page, (n) => (location.hash = `#/analytics?page=${n}`)),
  );
}
