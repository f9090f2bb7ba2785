// The storefront: catalogue, search, product pages, cart, checkout, orders.

import { ApiError, currentUser, del, get, login, newKey, post, put } from "./api.js";
import { Push } from "./push.js";
import {
  attempt,
  field,
  h,
  money,
  notify,
  pager,
  price,
  productImage,
  statusBadge,
  when,
} from "./ui.js";

const PAGE_SIZE = 12;
// The sandbox payment provider's cards (docs/rest-api.md).
const CARDS = [
  ["tok_visa", "Visa (accepted)"],
  ["tok_mastercard", "Mastercard (accepted)"],
  ["tok_chargeDeclined", "Card that is declined"],
  ["tok_processingError", "Card whose processor fails"],
];
const ORDER_STEPS = ["PENDING_PAYMENT", "PAID", "SHIPPED", "DELIVERED"];

function card(product) {
  return h(
    "li",
    { class: "card" },
    h(
      "a",
      { href: `#/product/${product.id}`, class: "card-link" },
      productImage(product),
      h("span", { class: "name", lang: "ja" }, product.name),
    ),
    price(product),
    product.stock_quantity > 0
      ? h("span", { class: "stock" }, `${product.stock_quantity} in stock`)
      : h("span", { class: "stock out" }, "Out of stock"),
  );
}

function grid(products, label) {
  return h("ul", { class: "grid", "aria-label": label }, products.map(card));
}

function searchForm(query = "") {
  const input = h("input", {
    type: "search",
    name: "q",
    value: query,
    placeholder: "イヤホン, coffee, …",
    autocomplete: "off",
  });
  return h(
    "form",
    {
      role: "search",
      class: "search",
      onsubmit: (event) => {
        event.preventDefault();
        const q = input.value.trim();
        location.hash = q ? `#/search?q=${encodeURIComponent(q)}` : "#/";
      },
    },
    field("Search products", input),
    h("button", { type: "submit" }, "Search"),
  );
}

async function row(title, path, main) {
  const section = h("section", { class: "row", "aria-label": title }, h("h2", {}, title));
  main.append(section);
  const body = await attempt(() => get(path, { limit: 6 }), section);
  if (body?.items?.length) section.append(grid(body.items.map((i) => i.product), title));
  else if (body) section.append(h("p", { class: "muted" }, "Nothing yet."));
}

export async function home(main, params) {
  const page = Number(params.get("page") || 1);
  const catalogue = h("section", { "aria-label": "Catalogue" }, h("h2", {}, "All products"));
  main.replaceChildren(h("h1", {}, "Shop"), searchForm());
  if (currentUser()) await row("For you", "/api/v1/recommendations/for-you", main);
  await row("Popular", "/api/v1/recommendations/popular", main);
  main.append(catalogue);
  const list = await attempt(() => get("/api/v1/products", { page, page_size: PAGE_SIZE }), catalogue);
  if (!list) return;
  catalogue.append(
    grid(list.items, "All products"),
    pager(list.page, (n) => (location.hash = `#/?page=${n}`)),
  );
}

export async function search(main, params) {
  const q = params.get("q") || "";
  const page = Number(params.get("page") || 1);
  const results = h("section", { "aria-label": "Results" });
  main.replaceChildren(h("h1", {}, "Search"), searchForm(q), results);
  const found = await attempt(
    () => get("/api/v1/search/products", { q, page, page_size: PAGE_SIZE }),
    results,
  );
  if (!found) return;
  results.append(
    h("p", { class: "count" }, `${found.page.total_items} results for “${q}”`),
    grid(found.items.map((i) => i.product), "Results"),
    pager(found.page, (n) => (location.hash = `#/search?q=${encodeURIComponent(q)}&page=${n}`)),
  );
}

function stars(rating) {
  return h("span", { class: "stars", "aria-label": `${rating} of 5 stars` }, "★".repeat(rating) + "☆".repeat(5 - rating));
}

function reviewForm(productId, onDone) {
  const rating = h("select", { name: "rating" }, [5, 4, 3, 2, 1].map((n) => h("option", { value: n }, `${n} ★`)));
  const comment = h("textarea", { name: "comment", rows: 3, maxlength: 4000 });
  const status = h("div");
  return h(
    "form",
    {
      class: "review-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const done = await attempt(
          () => post(`/api/v1/products/${productId}/reviews`, { rating: Number(rating.value), comment: comment.value }),
          status,
        );
        if (done) onDone();
      },
    },
    h("h3", {}, "Write a review"),
    field("Rating", rating),
    field("Comment", comment),
    h("button", { type: "submit" }, "Post review"),
    status,
  );
}

export async function product(main, params, id) {
  const status = h("div");
  main.replaceChildren(status);
  const item = await attempt(() => get(`/api/v1/products/${id}`), status);
  if (!item) return;
  const stock = h("p", { class: "stock", "aria-live": "polite" });
  const showStock = (n) => {
    stock.textContent = n > 0 ? `${n} in stock` : "Out of stock";
  };
  showStock(item.stock_quantity);
  const quantity = h("input", { type: "number", min: 1, max: 1000, value: 1, inputmode: "numeric" });
  const buy = h("form", {
    class: "buy",
    onsubmit: async (event) => {
      event.preventDefault();
      if (!currentUser()) {
        location.hash = "#/login";
        return;
      }
      const cart = await attempt(() => post("/api/v1/cart/items", { product_id: id, quantity: Number(quantity.value) }));
      if (cart) notify(`Added to your cart (${cart.items.length} items, ${money(cart.total)}).`);
    },
  }, field("Quantity", quantity), h("button", { type: "submit" }, "Add to cart"));
  const reviews = h("section", { "aria-label": "Reviews" }, h("h2", {}, "Reviews"));
  const together = h("section", { "aria-label": "Bought together" }, h("h2", {}, "Bought together"));
  main.replaceChildren(
    h(
      "article",
      { class: "product" },
      productImage(item, "large"),
      h(
        "div",
        { class: "details" },
        h("h1", { lang: "ja" }, item.name),
        price(item),
        stock,
        h("p", { lang: "ja" }, item.description),
        buy,
      ),
    ),
    together,
    reviews,
  );
  main.push = new Push([`product:${id}`], (message) => {
    if (message.type === "product.updated") showStock(message.data.stock_quantity);
    if (message.type === "product.out_of_stock") showStock(0);
  });
  const recommended = await attempt(() => get(`/api/v1/recommendations/products/${id}`, { limit: 6 }), together);
  if (recommended) {
    together.append(
      recommended.items.length
        ? grid(recommended.items.map((i) => i.product), "Bought together")
        : h("p", { class: "muted" }, "No suggestions yet."),
    );
  }
  const loadReviews = async () => {
    const list = await attempt(() => get(`/api/v1/products/${id}/reviews`, { page_size: 20 }), reviews);
    if (!list) return;
    reviews.replaceChildren(
      h("h2", {}, `Reviews (${list.page.total_items})`),
      list.items.length
        ? h("ul", { class: "reviews" }, list.items.map((r) => h("li", {}, stars(r.rating), " ", h("span", { lang: "ja" }, r.comment))))
        : h("p", { class: "muted" }, "No reviews yet."),
    );
    if (currentUser()) reviews.append(reviewForm(id, loadReviews));
  };
  await loadReviews();
}

export async function cart(main) {
  const status = h("div");
  main.replaceChildren(h("h1", {}, "Your cart"), status);
  const body = await attempt(() => get("/api/v1/cart"), status);
  if (!body) return;
  if (!body.items.length) {
    main.append(h("p", {}, "Your cart is empty. ", h("a", { href: "#/" }, "Browse products")));
    return;
  }
  const rows = body.items.map((line) => {
    const quantity = h("input", {
      type: "number",
      min: 0,
      max: 1000,
      value: line.quantity,
      "aria-label": `Quantity of ${line.name}`,
      onchange: async () => {
        if (await attempt(() => put(`/api/v1/cart/items/${line.product_id}`, { quantity: Number(quantity.value) }), status)) cart(main);
      },
    });
    return h(
      "tr",
      {},
      h("td", { lang: "ja" }, h("a", { href: `#/product/${line.product_id}` }, line.name)),
      h("td", {}, money(line.unit_price)),
      h("td", {}, quantity),
      h("td", {}, money(line.line_total)),
      h("td", {}, h("button", {
        type: "button",
        class: "link",
        "aria-label": `Remove ${line.name}`,
        onclick: async () => {
          if (await attempt(() => del(`/api/v1/cart/items/${line.product_id}`), status)) cart(main);
        },
      }, "Remove")),
    );
  });
  const checkout = h("button", {
    type: "button",
    class: "primary",
    onclick: async () => {
      checkout.disabled = true;
      const order = await attempt(() => post("/api/v1/orders", { from_cart: true }, newKey()), status);
      checkout.disabled = false;
      if (order) location.hash = `#/orders/${order.id}`;
    },
  }, "Checkout");
  main.append(
    h(
      "table",
      { class: "lines" },
      h("thead", {}, h("tr", {}, ["Product", "Price", "Quantity", "Total", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows),
    ),
    h("p", { class: "total" }, "Total: ", h("strong", {}, money(body.total))),
    checkout,
  );
}

function paymentForm(order, onPaid) {
  const token = h("select", { name: "card" }, CARDS.map(([value, label]) => h("option", { value }, label)));
  const status = h("div", { "aria-live": "assertive" });
  const pay = h("button", { type: "submit", class: "primary" }, `Pay ${money(order.total_amount)}`);
  return h(
    "form",
    {
      class: "payment",
      onsubmit: async (event) => {
        event.preventDefault();
        pay.disabled = true;
        status.replaceChildren();
        // A new key per attempt: a retry with another card is a new payment request.
        const paid = await attempt(
          () => post(`/api/v1/orders/${order.id}/payment`, { payment_method: { type: "card", token: token.value } }, newKey()),
          status,
        );
        pay.disabled = false;
        if (paid) onPaid(paid);
      },
    },
    h("h2", {}, "Payment"),
    field("Card (sandbox)", token),
    pay,
    status,
  );
}

function progress(status) {
  const reached = ORDER_STEPS.indexOf(status);
  return h(
    "ol",
    { class: "progress", "aria-label": "Order progress" },
    ORDER_STEPS.map((step, i) => h("li", { class: i <= reached ? "done" : "", "aria-current": i === reached ? "step" : false }, step.replace("_", " "))),
  );
}

export async function order(main, params, id) {
  const status = h("div");
  main.replaceChildren(status);
  const body = await attempt(() => get(`/api/v1/orders/${id}`), status);
  if (!body) return;
  const badge = h("span", { id: "order-status", "aria-live": "polite" }, statusBadge(body.status));
  const steps = h("div", {}, progress(body.status));
  const live = h("span", { class: "live muted" }, "connecting…");
  const payment = h("div");
  let shown = null;
  const show = (state) => {
    // A repeated status keeps the form and its message; an older one (a slow
    // read overtaken by a push) never replaces a newer one.
    if (state === shown || shown === "CANCELLED") return;
    if (state !== "CANCELLED" && ORDER_STEPS.indexOf(state) < ORDER_STEPS.indexOf(shown)) return;
    shown = state;
    badge.replaceChildren(statusBadge(state));
    steps.replaceChildren(progress(state));
    payment.replaceChildren(state === "PENDING_PAYMENT" ? paymentForm(body, () => notify("Payment accepted.")) : "");
  };
  main.replaceChildren(
    h("h1", {}, `Order ${body.order_number}`),
    h("p", {}, "Status: ", badge, " ", live),
    steps,
    h(
      "table",
      { class: "lines" },
      h("thead", {}, h("tr", {}, ["Product", "Quantity", "Total"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, body.items.map((l) => h("tr", {}, h("td", { lang: "ja" }, l.name), h("td", {}, String(l.quantity)), h("td", {}, money(l.line_total))))),
    ),
    h("p", { class: "total" }, "Total: ", h("strong", {}, money(body.total_amount))),
    payment,
  );
  show(body.status);
  main.push = new Push(["orders"], (message) => {
    if (message.type === "order.status_changed" && message.data.order_id === id) show(message.data.status);
  }, async (state) => {
    live.textContent = state === "live" ? "● live" : "reconnecting…";
    if (state !== "live") return;
    // What changed before the subscription took (or while reconnecting) was not pushed.
    const now = await get(`/api/v1/orders/${id}`).catch(() => null);
    if (now) show(now.status);
  });
}

export async function orders(main, params) {
  const page = Number(params.get("page") || 1);
  const status = h("div");
  main.replaceChildren(h("h1", {}, "Your orders"), status);
  const list = await attempt(() => get("/api/v1/orders", { page, page_size: 20, sort_by: "created_at", descending: true }), status);
  if (!list) return;
  main.append(
    list.items.length
      ? h("ul", { class: "orders" }, list.items.map((o) => h("li", {}, h("a", { href: `#/orders/${o.id}` }, o.order_number), " ", statusBadge(o.status), " ", money(o.total_amount), " ", h("span", { class: "muted" }, when(o.created_at)))))
      : h("p", {}, "No orders yet."),
    pager(list.page, (n) => (location.hash = `#/orders?page=${n}`)),
  );
}

function accountForm(title, fields, submit, footer) {
  const status = h("div");
  return h(
    "form",
    {
      class: "account",
      onsubmit: async (event) => {
        event.preventDefault();
        await attempt(() => submit(Object.fromEntries(fields.map(([name, , input]) => [name, input.value]))), status);
      },
    },
    h("h1", {}, title),
    fields.map(([, label, input]) => field(label, input)),
    h("button", { type: "submit", class: "primary" }, title),
    status,
    footer,
  );
}

const input = (type, name, extra = {}) => h("input", { type, name, required: true, ...extra });

export function loginView(main, params, refresh) {
  main.replaceChildren(
    accountForm(
      "Log in",
      [
        ["email", "Email", input("email", "email", { autocomplete: "username" })],
        ["password", "Password", input("password", "password", { autocomplete: "current-password" })],
      ],
      async ({ email, password }) => {
        const user = await login(email, password);
        refresh();
        const back = params.get("next");
        if (back) location.hash = back;
        else location.href = user.groups.includes("admin") ? "/console" : user.groups.includes("seller") ? "/seller" : "/#/";
      },
      h("p", {}, "New here? ", h("a", { href: "#/signup" }, "Create an account")),
    ),
  );
}

export function signupView(main, params, refresh) {
  main.replaceChildren(
    accountForm(
      "Sign up",
      [
        ["display_name", "Name", input("text", "display_name", { autocomplete: "name", required: false })],
        ["email", "Email", input("email", "email", { autocomplete: "username" })],
        ["password", "Password (8+ characters, upper and lower case, a digit)", input("password", "password", { autocomplete: "new-password", minlength: 8 })],
      ],
      async ({ display_name, email, password }) => {
        const created = await post("/auth/signup", { email, password, display_name: display_name || undefined });
        if (!created.confirmed) {
          location.hash = `#/confirm?email=${encodeURIComponent(email)}`;
          return;
        }
        await login(email, password);
        refresh();
        notify("Welcome! Your account is ready.");
        location.hash = "#/";
      },
      h("p", {}, "Have an account? ", h("a", { href: "#/login" }, "Log in")),
    ),
  );
}

export function confirmView(main, params) {
  main.replaceChildren(
    accountForm(
      "Confirm",
      [
        ["email", "Email", input("email", "email", { value: params.get("email") || "" })],
        ["code", "Code from the email", input("text", "code", { autocomplete: "one-time-code" })],
      ],
      async ({ email, code }) => {
        await post("/auth/confirm", { email, code });
        notify("Confirmed: you can log in now.");
        location.hash = "#/login";
      },
    ),
  );
}

export { ApiError };
