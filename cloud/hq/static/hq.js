// HQ's page: signs in once with an HQ token (kept in an HttpOnly cookie), then shows the
// stores and their sync, sales per store and day, reconciliation exceptions, a member by phone
// or code, and the coupon campaigns with their claim QR. Refreshed every 15 seconds.
import { ApiError, call, money } from "/screens/common/api.js";

const $ = (id) => document.getElementById(id);

function say(text, kind = "info") {
  $("message").textContent = text;
  $("message").dataset.kind = kind;
}

function failed(error) {
  if (error instanceof ApiError) say(`${error.message} (${error.code})`, "error");
  else say(String(error), "error");
}

function rows(tableId, data) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren();
  for (const cells of data) {
    const tr = document.createElement("tr");
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    body.append(tr);
  }
}

const ago = (iso) => {
  if (!iso) return "-";
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
};
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "-");

async function showStores() {
  const { stores } = await call("GET", "/api/v1/stores"); // each with its sync state: one read
  rows(
    "stores",
    stores.map((s) => {
      const st = s.sync;
      const state = s.revoked_at
        ? "停用 revoked"
        : !s.enrolled_at
          ? "未注册 not enrolled"
          : st && st.diverged
            ? "分叉 diverged: recovery needed"
            : "正常 ok";
      return [
        `${s.id} ${s.name}`,
        when(st && st.last_seen_at),
        ago(st && st.last_seen_at),
        st ? String(st.events_applied) : "-",
        st ? String(st.quarantined) : "-",
        st && st.clock_skew_s != null ? `${st.clock_skew_s.toFixed(1)} s` : "-",
        state,
      ];
    }),
  );
}

async function showDaily() {
  const { days } = await call("GET", "/api/v1/reports/daily-sales?days=14");
  rows(
    "daily",
    days.map((d) => [d.date, d.store_id, String(d.sales), `${money(d.total, d.currency)} ${d.currency}`]),
  );
}

async function showExceptions() {
  const { exceptions } = await call("GET", "/api/v1/exceptions");
  rows(
    "exceptions",
    exceptions.map((e) => [
      e.kind,
      e.store_id || "-",
      e.subject_id,
      e.unit === "points" ? `${e.amount} points` : `${money(e.amount, e.unit)} ${e.unit}`,
      when(e.created_at),
    ]),
  );
}

async function showCampaigns() {
  const { campaigns } = await call("GET", "/api/v1/campaigns");
  const list = $("campaigns");
  list.replaceChildren();
  for (const c of campaigns) {
    const li = document.createElement("li");
    const title = document.createElement("p");
    title.textContent = `${c.name} · ${c.starts.slice(0, 10)} – ${c.ends.slice(0, 10)}${
      c.public_code ? ` · ${c.public_code}` : ""
    }`;
    const show = document.createElement("button");
    show.type = "button";
    show.textContent = `领券二维码 Claim QR: ${c.name}`;
    show.addEventListener("click", async () => {
      try {
        const claim = await call("GET", `/api/v1/campaigns/${encodeURIComponent(c.id)}/claim`);
        const svg = new DOMParser().parseFromString(claim.qr_svg, "text/html").querySelector("svg");
        show.replaceWith(document.importNode(svg, true));
      } catch (error) {
        failed(error);
      }
    });
    li.append(title, show);
    list.append(li);
  }
}

async function findMember(q) {
  const key = /^\+?[0-9 -]{6,}$/.test(q) ? "phone" : "code";
  const { members } = await call("GET", `/api/v1/members?${key}=${encodeURIComponent(q)}`);
  const ledgerBox = $("member-ledger");
  ledgerBox.replaceChildren();
  if (!members.length) {
    $("member-shown").textContent = "没有这个会员 No such member";
    return;
  }
  const m = members[0];
  $("member-shown").textContent = `${m.masked_phone} · ${m.tier} · 积分 points ${m.balance}`;
  const ledger = await call("GET", `/api/v1/members/${m.id}/ledger`);
  for (const e of ledger.entries) {
    const li = document.createElement("li");
    li.textContent = `${e.created_at.slice(0, 10)} ${e.kind} ${e.points > 0 ? "+" : ""}${e.points} ${e.store_id || ""}`;
    ledgerBox.append(li);
  }
}

async function refresh() {
  await Promise.all([showStores(), showDaily(), showExceptions()]);
}

async function open() {
  $("sign-in").hidden = true;
  $("desk").hidden = false;
  await Promise.all([refresh(), showCampaigns()]);
  setInterval(() => refresh().catch(failed), 15000);
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const signed = await call("POST", "/api/v1/hq/session", { token: $("hq-token").value.trim() });
    $("hq-token").value = "";
    $("link").textContent = signed.name;
    $("link").hidden = false;
    await open();
    say("");
  } catch (error) {
    failed(error);
  }
});
$("member-form").addEventListener("submit", (event) => {
  event.preventDefault();
  findMember($("member-query").value.trim()).catch(failed);
});
$("sign-out").addEventListener("click", async () => {
  await call("POST", "/api/v1/hq/sign-out").catch(failed);
  location.reload();
});

// Signed in already (the cookie)? Then straight to the desk; else the token form.
call("GET", "/api/v1/stores")
  .then(() => open())
  .catch((error) => {
    if (!(error instanceof ApiError) || error.status !== 401) return failed(error);
    $("sign-in").hidden = false;
    $("hq-token").focus();
  });
