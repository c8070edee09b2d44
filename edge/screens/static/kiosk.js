// The self-checkout kiosk: pairs once with a manager's code, then takes scans (a USB scanner
// types digits and Enter into the focused field), a member, a coupon, and a card payment.
import { call } from "/screens/common/api.js";
import { renderCart, withMember } from "./cart.js";
import { failed, paired, say } from "./pairing.js";

const $ = (id) => document.getElementById(id);
let cart = null;

function show(next) {
  cart = next;
  const waiting = renderCart(cart, "pay-card");
  if (waiting) watch();
  const member = cart && cart.member;
  const spent = cart && cart.points ? ` · 已用 using ${cart.points.points}` : "";
  $("member-shown").textContent = member
    ? `${member.masked_phone} · 积分 points ${member.balance}${spent}${member.offline ? " · 离线 offline" : ""}`
    : "";
  $("points-form").hidden = !(member && member.balance > 0);
}

// Whether the store reaches HQ, asked every 15 seconds: offline, the kiosk says so where it
// matters (members and points), and goes on selling.
async function watchLink() {
  try {
    const s = await call("GET", "/api/v1/sync/status");
    $("offline").hidden = !s.enrolled || s.online;
  } catch (error) {
    $("offline").hidden = true;
  }
}

// While an attendant is wanted (an age check, a call), the kiosk asks again every two seconds.
let watching = null;
function watch() {
  if (watching) return;
  watching = setInterval(async () => {
    try {
      if (cart && cart.approval.required && !cart.approval.approved) {
        show(await call("GET", `/api/v1/carts/${cart.id}`));
      }
      const mine = await call("GET", "/api/v1/assistance/mine");
      $("help-coming").hidden = !mine.call;
      const wanted = !$("help-coming").hidden || !$("age-check").hidden;
      if (!wanted) {
        clearInterval(watching);
        watching = null;
      }
    } catch (error) {
      failed(error);
    }
  }, 2000);
}

async function callForHelp() {
  const body = cart ? { cart_id: cart.id } : {};
  await call("POST", "/api/v1/assistance", body, { key: crypto.randomUUID() });
  $("help-coming").hidden = false;
  watch();
}

async function ensureCart() {
  if (!cart) show(await call("POST", "/api/v1/carts", { channel: "kiosk" }));
  return cart;
}

async function scan(code) {
  const open = await ensureCart();
  show(await call("POST", `/api/v1/carts/${open.id}/lines`, { barcode: code }));
  say("");
}

async function pay() {
  if (!cart || !cart.lines.length) return say("购物车是空的 The cart is empty", "error");
  const key = crypto.randomUUID();
  const paid = await call(
    "POST",
    `/api/v1/carts/${cart.id}/checkout`,
    { payments: [{ method: "card", amount: cart.due }] },
    { key },
  );
  const receipt = await fetch(`/api/v1/sales/${paid.sale.id}/receipt?format=text`, {
    credentials: "same-origin",
  });
  $("receipt").textContent = await receipt.text();
  $("receipt-box").hidden = false;
  say("谢谢惠顾 Thank you: paid", "done");
  cart = null;
}

// A scanner does not wait for the answer: the field is emptied at once for the next code, and
// the cart's writes go one after another in the order they were made (one cart, no lost scan).
let queue = Promise.resolve();
function on(formId, handler) {
  $(formId).addEventListener("submit", (event) => {
    event.preventDefault();
    const input = event.target.querySelector("input");
    const value = input.value.trim();
    if (!value) return;
    input.value = "";
    queue = queue.then(() => handler(value)).catch((error) => {
      if (formId !== "scan-form") input.value = value; // to correct and send again
      failed(error);
    });
    if (formId === "scan-form") $("scan").focus();
  });
}

on("scan-form", scan);
on("member-form", async (who) => show(await withMember(cart, "kiosk", who)));
on("points-form", async (points) => {
  const open = await ensureCart();
  show(await call("PUT", `/api/v1/carts/${open.id}/points`, { points: Number(points) }));
});
on("coupon-form", async (code) => {
  const open = await ensureCart();
  show(await call("POST", `/api/v1/carts/${open.id}/coupons`, { code }));
});
$("pay-card").addEventListener("click", () => pay().catch(failed));
$("call-help").addEventListener("click", () => callForHelp().catch(failed));
$("new-cart").addEventListener("click", () => {
  show(null);
  $("receipt-box").hidden = true;
  say("");
  $("scan").focus();
});
paired("till", "scan", () => {
  watchLink();
  setInterval(watchLink, 15000);
});
