// The exit gate: a QR scanner types the pass and Enter; the verdict says valid or not, and
// whether this exit is picked for an audit.
import { call, money } from "/screens/common/api.js";
import { failed, paired, say } from "./pairing.js";

const $ = (id) => document.getElementById(id);
let currency = "CNY";

$("pass-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = $("pass").value.trim();
  if (!token) return;
  try {
    const verdict = await call("POST", "/api/v1/exit-passes/verify", { token });
    const box = $("verdict");
    box.dataset.kind = verdict.valid ? (verdict.audit ? "audit" : "valid") : "invalid";
    if (!verdict.valid) {
      $("verdict-title").textContent = "无效 Not valid";
      $("verdict-detail").textContent = verdict.reason || "";
    } else {
      $("verdict-title").textContent = verdict.audit
        ? "请抽检 Check the bag: picked for an audit"
        : "有效 Valid: have a good day";
      $("verdict-detail").textContent =
        `#${verdict.sale_number} · ${verdict.item_count} 件 items · ${money(verdict.total, currency)}`;
    }
    const items = $("verdict-items");
    items.replaceChildren();
    for (const item of verdict.items || []) {
      const li = document.createElement("li");
      li.textContent = item.weight_g
        ? `${item.name} × ${item.quantity} (${item.weight_g} g)`
        : `${item.name} × ${item.quantity}`;
      items.append(li);
    }
    box.hidden = false;
    say("");
  } catch (error) {
    failed(error);
  }
  $("pass").value = "";
  $("pass").focus();
});
paired("gate", "pass", (me) => {
  currency = me.currency;
});
