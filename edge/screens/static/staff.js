// The staff tablet: the attendant's board (calls and age checks, polled with its ETag every
// two seconds), the link to HQ, the day's figures, stock, returns, and for a manager the
// devices and their pairing codes.
import { ApiError, call, money } from "/screens/common/api.js";
import { failed, paired, say } from "./pairing.js";

const $ = (id) => document.getElementById(id);
let me = null;
let boardTag = "";

function button(text, handler) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.addEventListener("click", () => handler().catch(failed));
  return b;
}

function item(text, ...buttons) {
  const li = document.createElement("li");
  const span = document.createElement("span");
  span.textContent = text;
  li.append(span, ...buttons);
  return li;
}

function facts(id, pairs) {
  const box = $(id);
  box.replaceChildren();
  for (const [label, value] of pairs) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    box.append(dt, dd);
  }
}

const since = (iso) => new Date(iso).toLocaleTimeString();

function showBoard(board) {
  const approvals = $("approvals");
  approvals.replaceChildren();
  for (const cart of board.approvals) {
    const what = cart.items.map((i) => `${i.name} × ${i.quantity}`).join(", ");
    approvals.append(
      item(
        `年龄核验 Age check · ${cart.device_name || cart.device_role} · ${what} · ${since(cart.since)}`,
        button("已核验，批准 Approve", async () => {
          await call("POST", `/api/v1/carts/${cart.cart_id}/approvals`, {}, {
            key: crypto.randomUUID(),
          });
          say("已批准 Approved", "done");
          await refreshBoard();
        }),
      ),
    );
  }
  const calls = $("calls");
  calls.replaceChildren();
  for (const c of board.calls) {
    calls.append(
      item(
        `呼叫 Call · ${c.device_name || c.device_role} · ${c.reason} · ${since(c.created_at)}`,
        button("已处理 Answered", async () => {
          await call("POST", `/api/v1/assistance/${c.id}/answer`, undefined, {
            key: crypto.randomUUID(),
          });
          await refreshBoard();
        }),
      ),
    );
  }
  $("board-empty").hidden = board.approvals.length + board.calls.length > 0;
}

async function refreshBoard() {
  const response = await fetch("/api/v1/assistance", {
    headers: { Accept: "application/json", "If-None-Match": boardTag },
    credentials: "same-origin",
  });
  if (response.status === 304) return;
  const data = await response.json();
  if (!response.ok) throw new ApiError(response.status, data.error || {});
  boardTag = response.headers.get("ETag") || "";
  showBoard(data);
}

async function refreshSync() {
  const s = await call("GET", "/api/v1/sync/status");
  facts("sync", [
    ["连接 Link", s.enrolled ? (s.online ? "在线 online" : "离线 offline") : "未注册 not enrolled"],
    ["待同步 Pending", String(s.outbox_pending)],
    ["最久 Oldest", s.oldest_pending_age_s == null ? "-" : `${Math.round(s.oldest_pending_age_s)} s`],
    ["隔离 Quarantined", String(s.quarantined.length)],
    ["暂停 Halted", s.halted ? `${s.halted}: ${s.last_error || ""}` : "否 no"],
    ["上次联系 Last contact", s.last_contact_at ? since(s.last_contact_at) : "-"],
  ]);
}

async function refreshDay() {
  const d = await call("GET", "/api/v1/reports/day");
  facts("day", [
    ["销售 Sales", String(d.sales)],
    ["件数 Items", String(d.items)],
    ["营业额 Revenue", money(d.revenue, d.currency)],
    ["退货 Returns", `${d.returns} · ${money(d.refunded, d.currency)}`],
    ["净额 Net", money(d.net_revenue, d.currency)],
  ]);
}

let sale = null;
function showSale(found) {
  sale = found;
  const body = $("return-lines").querySelector("tbody");
  body.replaceChildren();
  for (const line of found.lines) {
    const row = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = line.name;
    const bought = document.createElement("td");
    bought.textContent = String(line.quantity);
    const back = document.createElement("td");
    const input = document.createElement("input");
    input.type = "number";
    input.min = "0";
    input.max = String(line.quantity);
    input.value = "0";
    input.dataset.line = line.id;
    input.setAttribute("aria-label", `退回数量 Quantity to return: ${line.name}`);
    back.append(input);
    row.append(name, bought, back);
    body.append(row);
  }
  $("return-form").hidden = false;
}

async function refreshDevices() {
  // The store's own devices; shoppers' phones (one per shopper who scanned the door's QR) are
  // only counted.
  const { devices, phones_active } = await call("GET", "/api/v1/devices?phones=false");
  $("phones-active").textContent = `顾客手机 Shoppers' phones in use: ${phones_active}`;
  const body = $("devices").querySelector("tbody");
  body.replaceChildren();
  for (const d of devices) {
    const row = document.createElement("tr");
    const nameCell = document.createElement("td");
    const nameInput = document.createElement("input");
    nameInput.value = d.name;
    nameInput.setAttribute("aria-label", `名称 Name of ${d.name || d.role}`);
    nameCell.append(
      nameInput,
      button(`改名 Rename ${d.name || d.role}`, async () => {
        await call("PATCH", `/api/v1/devices/${d.id}`, { name: nameInput.value.trim() }, {
          key: crypto.randomUUID(),
        });
        say("已改名 Renamed", "done");
        await refreshDevices();
      }),
    );
    row.append(nameCell);
    for (const text of [d.role, d.status]) {
      const td = document.createElement("td");
      td.textContent = text;
      row.append(td);
    }
    const td = document.createElement("td");
    if (d.status === "active" && d.id !== me.device_id) {
      td.append(
        button(`停用 Revoke ${d.name}`, async () => {
          await call("POST", `/api/v1/devices/${d.id}/revoke`, undefined, {
            key: crypto.randomUUID(),
          });
          await refreshDevices();
        }),
      );
    }
    row.append(td);
    body.append(row);
  }
}

function form(id, handler) {
  $(id).addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await handler(new FormData(event.target));
    } catch (error) {
      failed(error);
    }
  });
}

form("stock-form", async (data) => {
  const sku = String(data.get("sku")).trim();
  const s = await call("GET", `/api/v1/stock/${encodeURIComponent(sku)}`);
  $("stock-shown").textContent = `${s.name}: ${s.on_hand} ${s.unit === "g" ? "g" : "件 each"}`;
});
form("move-form", async (data) => {
  const sku = $("stock-sku").value.trim();
  if (!sku) return say("先输入商品编码 Enter the SKU first", "error");
  await call(
    "POST",
    "/api/v1/stock/movements",
    {
      sku,
      quantity: Number(data.get("quantity")),
      kind: data.get("kind"),
      reason: String(data.get("reason") || ""),
    },
    { key: crypto.randomUUID() },
  );
  const s = await call("GET", `/api/v1/stock/${encodeURIComponent(sku)}`);
  $("stock-shown").textContent = `${s.name}: ${s.on_hand} ${s.unit === "g" ? "g" : "件 each"}`;
  say("已记录 Recorded", "done");
});
form("sale-form", async (data) => {
  const number = String(data.get("sale")).trim();
  showSale(await call("GET", `/api/v1/sales/${encodeURIComponent(number)}`));
});
form("return-form", async (data) => {
  const lines = [...$("return-lines").querySelectorAll("input[data-line]")]
    .map((input) => ({ line_id: input.dataset.line, quantity: Number(input.value) }))
    .filter((line) => line.quantity > 0);
  if (!lines.length) return say("选择要退的商品 Choose what comes back", "error");
  const done = await call(
    "POST",
    `/api/v1/sales/${sale.id}/returns`,
    { lines, reason: String(data.get("reason")) },
    { key: crypto.randomUUID() },
  );
  const refunded = done.return.refunds.map((r) => `${r.method} ${money(r.amount, me.currency)}`);
  say(`已退款 Refunded: ${refunded.join(", ")}`, "done");
  $("return-form").hidden = true;
  await refreshDay();
});
form("code-form", async (data) => {
  const made = await call(
    "POST",
    "/api/v1/pairing-codes",
    { role: data.get("role"), name: String(data.get("name") || "") },
    { key: crypto.randomUUID() },
  );
  $("code-shown").textContent =
    `${made.code} · ${made.role} · 有效至 until ${since(made.expires_at)}`;
});

$("poster-make").addEventListener("click", async () => {
  try {
    const poster = await call("POST", "/api/v1/store-qr", undefined, { key: crypto.randomUUID() });
    const svg = new DOMParser().parseFromString(poster.qr_svg, "text/html").querySelector("svg");
    $("poster-qr").replaceChildren(document.importNode(svg, true));
    $("poster-link").href = poster.url;
    $("poster-link").textContent = poster.url;
    $("poster-link").hidden = false;
  } catch (error) {
    failed(error);
  }
});

function showStaff(who) {
  me = who;
  const signedIn = Boolean(who.staff);
  $("staff-form").hidden = signedIn;
  $("staff-shown").hidden = !signedIn;
  $("staff-name").textContent = signedIn
    ? `${who.staff.name} (${who.staff.id})${who.role === "manager" ? " · 店长 manager" : ""}`
    : "";
  $("devices-box").hidden = who.role !== "manager";
  if (who.role === "manager") refreshDevices().catch(failed);
}

form("staff-form", async (data) => {
  await call(
    "POST",
    "/api/v1/staff/sign-in",
    { staff_id: String(data.get("staff_id")).trim(), pin: String(data.get("pin")), cookie: true },
    { key: crypto.randomUUID() },
  );
  $("staff-pin").value = "";
  showStaff(await call("GET", "/api/v1/me"));
  say("已登录 Signed in", "done");
});
$("staff-out").addEventListener("click", async () => {
  try {
    await call("POST", "/api/v1/staff/sign-out", undefined, { key: crypto.randomUUID() });
    showStaff(await call("GET", "/api/v1/me"));
    say("已退出 Signed out", "done");
  } catch (error) {
    failed(error);
  }
});

async function refreshAll() {
  await Promise.all([refreshBoard(), refreshSync(), refreshDay()]);
}

paired("desk", "stock-sku", (who) => {
  showStaff(who);
  refreshAll().catch(failed);
  setInterval(() => refreshBoard().catch(failed), 2000);
  setInterval(() => Promise.all([refreshSync(), refreshDay()]).catch(failed), 10000);
});
