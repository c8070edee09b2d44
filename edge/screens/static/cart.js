// A cart as the kiosk and the phone show it: its lines, the offers it takes, what is left to
// pay, and whether it waits for an attendant's age check (the pay button is held meanwhile).
import { call, money } from "/screens/common/api.js";

const $ = (id) => document.getElementById(id);

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

// Fills #lines, #discounts, #due and #age-check from ``cart`` (null: empty) and disables
// ``payButton`` while the age check is wanted; returns whether it is.
export function renderCart(cart, payButton) {
  const body = $("lines").querySelector("tbody");
  body.replaceChildren();
  for (const line of cart ? cart.lines : []) {
    const row = document.createElement("tr");
    row.append(cell(line.name), cell(String(line.quantity)), cell(money(line.total, cart.currency)));
    body.append(row);
  }
  const offers = $("discounts");
  offers.replaceChildren();
  for (const offer of cart ? cart.discounts : []) {
    const item = document.createElement("li");
    item.textContent = `${offer.name}: -${money(offer.amount, cart.currency)}`;
    offers.append(item);
  }
  $("due").value = cart ? money(cart.due, cart.currency) : "0.00";
  const waiting = Boolean(cart && cart.approval.required && !cart.approval.approved);
  $("age-check").hidden = !waiting;
  $(payButton).disabled = waiting;
  return waiting;
}

// A member shown by code or phone: attached to the open cart, or, before the first scan, the
// cart opened for them (one request, not two).
export function withMember(cart, channel, code) {
  return cart
    ? call("PUT", `/api/v1/carts/${cart.id}/member`, { member_code: code })
    : call("POST", "/api/v1/carts", { channel, member_code: code });
}
