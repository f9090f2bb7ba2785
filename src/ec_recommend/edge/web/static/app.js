// Entry point: the page (storefront at /, seller desk at /seller, operator
// console at /console) and, within it, the view named by the URL fragment.

import { currentUser, hasGroup, logout } from "./api.js";
import { dashboard } from "./console.js";
import * as seller from "./seller.js";
import * as shop from "./shop.js";
import { h } from "./ui.js";

// [fragment pattern, view, needs a login, group]
const PAGES = {
  "/": {
    title: "Shop",
    views: [
      [/^\/$/, shop.home],
      [/^\/search$/, shop.search],
      [/^\/product\/([\w-]+)$/, shop.product],
      [/^\/cart$/, shop.cart, true],
      [/^\/orders$/, shop.orders, true],
      [/^\/orders\/([\w-]+)$/, shop.order, true],
      [/^\/login$/, shop.loginView],
      [/^\/signup$/, shop.signupView],
      [/^\/confirm$/, shop.confirmView],
    ],
  },
  "/seller": {
    title: "Seller desk",
    group: "seller",
    views: [
      [/^\/$/, seller.products],
      [/^\/products$/, seller.products],
      [/^\/products\/([\w-]+)$/, seller.editProduct],
      [/^\/orders$/, seller.orders],
      [/^\/ledger$/, seller.ledger],
      [/^\/analytics$/, seller.analytics],
    ],
  },
  "/console": { title: "Operator console", group: "admin", views: [[/^\/$/, dashboard]] },
};

const page = PAGES[location.pathname] || PAGES["/"];
const main = document.getElementById("main");

function link(href, text) {
  const here = location.pathname + (location.hash || "#/");
  return h("a", { href, "aria-current": here === href ? "page" : false }, text);
}

function renderNav() {
  const user = currentUser();
  const items = [link("/#/", "Shop")];
  if (location.pathname === "/seller") {
    items.push(link("/seller#/products", "Products"), link("/seller#/orders", "Orders"), link("/seller#/ledger", "Ledger"), link("/seller#/analytics", "Analytics"));
  } else if (user) {
    items.push(link("/#/cart", "Cart"), link("/#/orders", "Orders"));
  }
  if (hasGroup("seller") && location.pathname !== "/seller") items.push(link("/seller#/products", "Seller desk"));
  if (hasGroup("admin")) items.push(link("/console#/", "Console"));
  if (user) {
    items.push(
      h("span", { class: "who" }, user.email),
      h("button", {
        type: "button",
        class: "link",
        onclick: () => {
          logout();
          location.href = "/#/";
        },
      }, "Log out"),
    );
  } else {
    items.push(link("/#/login", "Log in"), link("/#/signup", "Sign up"));
  }
  document.getElementById("nav").replaceChildren(...items);
}

// Each navigation renders into a fresh container, so a slow view that finishes
// after the next navigation writes into a detached element, not over the new one.
let current = null;

function leave(view) {
  view?.push?.close();
  view?.stop?.();
}

async function route() {
  leave(current);
  const view = document.createElement("div");
  current = view;
  main.replaceChildren(view);
  renderNav();
  const [path, query = ""] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query);
  const user = currentUser();
  document.title = `${page.title} · ec-recommend`;
  if (page.group && !(user && user.groups.includes(page.group))) {
    const message = user
      ? `This page is for ${page.group} accounts; you are logged in as ${user.email}.`
      : `Log in with a ${page.group} account to use the ${page.title.toLowerCase()}.`;
    view.replaceChildren(h("h1", {}, page.title), h("p", {}, message), h("p", {}, h("a", { href: `/#/login` }, "Log in")));
    return;
  }
  for (const [pattern, render, needsLogin] of page.views) {
    const match = pattern.exec(path);
    if (!match) continue;
    if (needsLogin && !user) {
      location.hash = `#/login?next=${encodeURIComponent("#" + path + (query ? "?" + query : ""))}`;
      return;
    }
    await render(view, params, ...(match.length > 1 ? match.slice(1) : [renderNav]));
    if (view !== current) leave(view); // left while it was loading
    return;
  }
  view.replaceChildren(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the start")));
}

window.addEventListener("hashchange", () => {
  route();
  main.focus({ preventScroll: true });
});
route();
