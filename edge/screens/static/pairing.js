// A page pairing itself once with a manager's six-digit code (the token goes into its cookie),
// then showing its own part of the page.
import { ApiError, call } from "/screens/common/api.js";

export function say(text, kind = "info") {
  const box = document.getElementById("message");
  box.textContent = text;
  box.dataset.kind = kind;
}

export function failed(error) {
  if (error instanceof ApiError) say(`${error.message} (${error.code})`, "error");
  else say(String(error), "error");
}

// Shows ``main`` once the page is a paired device, the pairing form until then; ``onMe``
// receives what the store says of the device (its role, name, store and currency).
export async function paired(main, focus, onMe = () => {}) {
  const show = async () => {
    const me = await call("GET", "/api/v1/me");
    onMe(me);
    const link = document.getElementById("link");
    link.textContent = me.name || me.role;
    link.hidden = false;
    document.getElementById(main).hidden = false;
    document.getElementById(focus).focus();
  };
  document.getElementById("pair-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const code = document.getElementById("pair-code").value.trim();
      await call("POST", "/api/v1/pairing", { code, cookie: true });
      document.getElementById("pairing").hidden = true;
      await show();
      say("已配对 Paired", "done");
    } catch (error) {
      failed(error);
    }
  });
  try {
    await show();
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) return failed(error);
    document.getElementById("pairing").hidden = false;
    document.getElementById("pair-code").focus();
  }
}
