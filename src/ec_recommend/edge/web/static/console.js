// The operator console: service health, circuit breakers, outboxes, queues
// and dead letters (with redrive and purge), rate-limit rejections, and the
// request rate and p99 of the last minutes, refreshed every few seconds.

import { get, post } from "./api.js";
import { lineChart } from "./chart.js";
import { attempt, h, notify } from "./ui.js";

const REFRESH_MS = 3000;

function table(caption, columns, rows) {
  return h(
    "table",
    { class: "lines compact" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, "none"))),
  );
}

const ok = (good, yes, no) => h("span", { class: `badge ${good ? "good" : "bad"}` }, good ? yes : no);

function overviewPanels(overview) {
  const traffic = overview.traffic.map((p) => ({ ...p, at: new Date(p.at) }));
  return [
    h(
      "div",
      { class: "charts" },
      lineChart("Requests", "/s", traffic.map((p) => ({ x: p.at, y: p.requests_per_second }))),
      lineChart("p99 latency", "ms", traffic.map((p) => ({ x: p.at, y: p.p99_ms }))),
    ),
    h(
      "div",
      { class: "panels" },
      table("Services", ["Service", "Health"], overview.services.map((s) => h("tr", {}, h("td", {}, s.name), h("td", {}, ok(s.serving, "serving", "down"))))),
      table("Circuit breakers", ["Service", "State"], overview.circuit_breakers.map((b) => h("tr", {}, h("td", {}, b.service), h("td", {}, ok(b.state === "closed", b.state, b.state))))),
      table("Outboxes", ["Service", "Unsent", "Oldest (s)"], overview.outboxes.map((o) => h("tr", {}, h("td", {}, o.service), h("td", {}, String(o.backlog)), h("td", {}, o.oldest_unsent_age_seconds.toFixed(1))))),
      table("Rate-limit rejections", ["Tier", "Rejected"], overview.rate_limit_rejections.map((r) => h("tr", {}, h("td", {}, r.tier), h("td", {}, String(r.count))))),
    ),
  ];
}

function queueTable(queues, refresh) {
  const act = async (button, what, path, done) => {
    button.disabled = true;
    const result = await attempt(() => post(path));
    button.disabled = false;
    if (result !== undefined) {
      notify(done(result));
      refresh();
    }
  };
  const rows = queues.map((q) => {
    const redrive = h("button", { type: "button", disabled: q.dlq_messages === 0, "aria-label": `Redrive ${q.dlq}` }, "Redrive");
    redrive.addEventListener("click", () =>
      act(redrive, "redrive", `/api/v1/admin/queues/${q.name}/redrive`, (r) => `Moved ${r.moved} message(s) back to ${q.name}.`),
    );
    const purge = h("button", { type: "button", class: "danger", disabled: q.dlq_messages === 0, "aria-label": `Purge ${q.dlq}` }, "Purge");
    purge.addEventListener("click", () => {
      if (confirm(`Delete every message in ${q.dlq}?`)) {
        act(purge, "purge", `/api/v1/admin/queues/${q.name}/purge`, () => `Purged ${q.dlq}.`);
      }
    });
    return h(
      "tr",
      { dataset: { queue: q.name } },
      h("td", {}, q.name),
      h("td", {}, q.subscriber),
      h("td", {}, String(q.messages)),
      h("td", {}, String(q.messages_in_flight)),
      h("td", { class: q.dlq_messages ? "alert" : "", "data-dlq": q.dlq }, String(q.dlq_messages)),
      h("td", {}, redrive, " ", purge),
    );
  });
  return table("Queues and dead letters", ["Queue", "Subscriber", "Waiting", "In flight", "Dead letters", ""], rows);
}

export async function dashboard(main) {
  const top = h("div", { "aria-live": "off" });
  const queues = h("section", { "aria-label": "Queues" });
  const updated = h("p", { class: "muted", id: "updated" });
  main.replaceChildren(h("h1", {}, "Operator console"), updated, top, queues);
  let timer;
  let stopped = false;
  const refresh = async () => {
    clearTimeout(timer);
    if (stopped) return;
    const [overview, depth] = await Promise.all([
      attempt(() => get("/api/v1/admin/overview"), top),
      attempt(() => get("/api/v1/admin/queues"), queues),
    ]);
    if (overview) top.replaceChildren(...overviewPanels(overview));
    if (depth) queues.replaceChildren(queueTable(depth.items, refresh));
    if (stopped) return;
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s.`;
    timer = setTimeout(refresh, REFRESH_MS);
  };
  main.stop = () => {
    stopped = true;
    clearTimeout(timer);
  };
  await refresh();
}
