// Scan and go on a shopper's own phone: joined by the store's QR at the door (its token after
// the '#', never sent in a request line), then scanning with the camera where the browser has
// a BarcodeDetector (typed codes otherwise), paying in the app and showing the exit pass. The
// member's balance, ledger and coupons show once their member code is given.
import { ApiError, call, money } from "/screens/common/api.js";
import { renderCart, withMember } from "./cart.js";
import { failed, paired, say } from "./pairing.js";

const $ = (id) => document.getElementById(id);
let cart = null;
let member = null;
let memberCode = null; // what the shopper showed, for their next carts
let queue = Promise.resolve();

function show(next) {
  cart = next;
  renderCart(cart, "pay");
}

// Once the shopper has shown their member code, each new cart opens for them (one request).
async function ensureCart() {
  if (cart) return cart;
  try {
    const opening = memberCode
      ? { channel: "scan_to_buy", member_code: memberCode }
      : { channel: "scan_to_buy" };
    show(await call("POST", "/api/v1/carts", opening));
  } catch (error) {
    if (!memberCode || error.code !== "unknown_member") throw error;
    memberCode = null; // no longer known here: the shopper shows their code again
    member = null;
    $("member-shown").textContent = "";
    show(await call("POST", "/api/v1/carts", { channel: "scan_to_buy" }));
  }
  return cart;
}

// A campaign's poster QR claims a coupon into the member's account (it lands in "my coupons").
const CLAIM_PREFIX = "AISLE-CLAIM:";

async function claim(text) {
  if (!member) return say("先出示会员码 Show your member code first", "error");
  const got = await call(
    "POST",
    `/api/v1/members/${member.id}/coupons`,
    { claim: text },
    { key: crypto.randomUUID() },
  );
  say(`已领取 Claimed: ${got.name}`, "done");
  await showMember(member.id);
}

function scan(code) {
  if (code.toUpperCase().startsWith(CLAIM_PREFIX)) {
    queue = queue.then(() => claim(code)).catch(failed);
    return queue;
  }
  queue = queue
    .then(async () => {
      const open = await ensureCart();
      show(await call("POST", `/api/v1/carts/${open.id}/lines`, { barcode: code }));
      say("");
    })
    .catch(failed);
  return queue;
}

async function pay() {
  if (!cart || !cart.lines.length) return say("购物车是空的 The cart is empty", "error");
  if (cart.approval.required && !cart.approval.approved) {
    show(await call("GET", `/api/v1/carts/${cart.id}`));
    if (!cart.approval.approved) return say("等待店员核验年龄 Waiting for the age check", "error");
  }
  const paid = await call(
    "POST",
    `/api/v1/carts/${cart.id}/checkout`,
    { payments: [{ method: "wallet", amount: cart.due }] },
    { key: crypto.randomUUID() },
  );
  // The QR is the server's own SVG (segno), parsed apart from the page (no script of it runs).
  const svg = new DOMParser().parseFromString(paid.exit_pass.qr_svg, "text/html").querySelector("svg");
  $("pass-qr").replaceChildren(document.importNode(svg, true));
  $("pass-token").textContent = paid.exit_pass.token;
  $("pass-box").hidden = false;
  $("scanning").hidden = true;
  say(`已支付 Paid ${money(paid.sale.total, paid.sale.currency)} · #${paid.sale.number}`, "done");
  cart = null;
  if (member) await showMember(member.id);
}

async function showMember(id) {
  const list = (id_, items) => {
    const box = $(id_);
    box.replaceChildren();
    for (const text of items) {
      const li = document.createElement("li");
      li.textContent = text;
      box.append(li);
    }
  };
  try {
    const ledger = await call("GET", `/api/v1/members/${id}/ledger`);
    $("member-shown").textContent = `${member.masked_phone} · 积分 points ${ledger.balance}`;
    list(
      "ledger",
      ledger.entries.map((e) => `${e.created_at.slice(0, 10)} ${e.kind} ${e.points > 0 ? "+" : ""}${e.points}`),
    );
    const { coupons } = await call("GET", `/api/v1/members/${id}/coupons`);
    list(
      "my-coupons",
      coupons.map((c) => `${c.name} · ${c.status} · ${c.valid_until.slice(0, 10)}`),
    );
  } catch (error) {
    // The ledger and coupons are the cloud's: offline, the store's own word is shown.
    if (!(error instanceof ApiError) || error.status !== 503) throw error;
    $("member-shown").textContent =
      `${member.masked_phone} · 积分 points ${member.balance} · 离线 offline`;
  }
}

async function attachMember(code) {
  show(await withMember(cart, "scan_to_buy", code));
  member = cart.member;
  memberCode = code;
  await showMember(member.id);
}

// The camera, where the browser can read barcodes itself.
async function startCamera() {
  const detector = new window.BarcodeDetector({
    formats: ["ean_13", "ean_8", "upc_a", "upc_e", "code_128", "qr_code"],
  });
  const video = $("camera");
  video.srcObject = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: "environment" },
  });
  video.hidden = false;
  await video.play();
  let last = "";
  setInterval(async () => {
    const found = await detector.detect(video).catch(() => []);
    const code = found.length ? found[0].rawValue : "";
    if (code && code !== last) scan(code);
    last = code;
  }, 300);
}

async function joinByStoreQr() {
  const join = new URLSearchParams(location.hash.slice(1)).get("join");
  if (!join) return;
  history.replaceState(null, "", location.pathname); // the token leaves the address bar
  try {
    await call("POST", "/api/v1/pairing", { join, cookie: true });
  } catch (error) {
    failed(error);
  }
}

$("scan-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("scan").value.trim();
  $("scan").value = "";
  if (value) scan(value);
  $("scan").focus();
});
$("member-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("member").value.trim();
  // In turn with the scans: a scan and the member must not each open a cart.
  if (value) queue = queue.then(() => attachMember(value)).catch(failed);
});
$("pay").addEventListener("click", () => {
  queue = queue.then(pay).catch(failed);
});
$("call-help").addEventListener("click", async () => {
  try {
    await call("POST", "/api/v1/assistance", cart ? { cart_id: cart.id } : {}, {
      key: crypto.randomUUID(),
    });
    say("店员马上就到 Help is on its way", "done");
  } catch (error) {
    failed(error);
  }
});
$("again").addEventListener("click", () => {
  $("pass-box").hidden = true;
  $("scanning").hidden = false;
  show(null);
  say("");
  $("scan").focus(); // a scanner's next code lands in the field at once
});
$("camera-start").hidden = !("BarcodeDetector" in window && navigator.mediaDevices);
$("camera-start").addEventListener("click", () => startCamera().catch(failed));

joinByStoreQr().then(() => paired("shop", "scan"));
