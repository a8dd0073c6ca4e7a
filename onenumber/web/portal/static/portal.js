// OneNumber portal: the few live parts of the server-rendered pages. No framework, no CDN.
// Every change the page makes carries the session's CSRF token (X-CSRF-Token), the rule of
// the one login system; forms without JavaScript post it as the `csrf` field instead.
"use strict";

(function () {
  const csrf = () => document.body.dataset.csrf || "";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) node.append(c);
    return node;
  }

  async function send(url, options) {
    const headers = Object.assign({ "X-CSRF-Token": csrf() }, options.headers || {});
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options, { headers }));
    if (response.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
      throw new Error("logged out");
    }
    return response;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      return body.message || body.detail || response.statusText;
    } catch (e) {
      return response.statusText || "HTTP " + response.status;
    }
  }

  // ---------------------------------------------------------------- a page that answers a form with an error:
  // focus the first field in error (its message is tied to it with aria-describedby)
  const invalid = document.querySelector('[aria-invalid="true"]');
  if (invalid) {
    const details = invalid.closest("details");
    if (details) details.open = true;
    invalid.focus();
  }

  // ---------------------------------------------------------------- confirmations
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  }, true);

  // ---------------------------------------------------------------- live forms (user page)
  function restoreFocus(id, rowId) {
    let target = id ? document.getElementById(id) : null;
    if (target && target.disabled) {  // moved to the top (or bottom): the other arrow of the row
      const other = id.startsWith("up-") ? "down-" + id.slice(3) : id.startsWith("down-") ? "up-" + id.slice(5) : "";
      const sibling = other ? document.getElementById(other) : null;
      if (sibling && !sibling.disabled) target = sibling;
    }
    if (target && target.disabled && rowId) {
      const row = document.getElementById(rowId);
      target = row ? row.querySelector("button:not([disabled])") : null;
    }
    if (target) target.focus();
  }

  async function submitLive(form, submitter) {
    const live = document.getElementById("live");
    const status = document.getElementById("live-status");
    const focusId = submitter && submitter.id;
    const row = form.closest("tr");
    const rowId = row && row.id;
    const body = new URLSearchParams(new FormData(form));
    live.setAttribute("aria-busy", "true");
    try {
      const response = await send(form.action, {
        method: "POST", body, headers: { "X-Portal-Live": "1", "Content-Type": "application/x-www-form-urlencoded" },
      });
      const html = await response.text();
      if (!(response.headers.get("content-type") || "").includes("text/html") || !html.includes('id="live"')) {
        if (status) status.textContent = "Not saved: " + (response.statusText || "error " + response.status);
        return;
      }
      const holder = document.createElement("div");
      holder.innerHTML = html;
      const fresh = holder.querySelector("#live");
      live.replaceWith(fresh);
      if (status) status.textContent = fresh.dataset.message || "";
      restoreFocus(focusId, rowId);
    } catch (e) {
      if (status && e.message !== "logged out") status.textContent = "Not saved: the server did not answer.";
    } finally {
      const now = document.getElementById("live");
      if (now) now.removeAttribute("aria-busy");
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (event.defaultPrevented || !form.matches || !form.matches("form[data-live]")) return;
    event.preventDefault();
    submitLive(form, event.submitter);
  });

  // ---------------------------------------------------------------- provisioning links (admin)
  document.addEventListener("click", async (event) => {
    const button = event.target.closest && event.target.closest("button[data-provision]");
    if (!button) return;
    const target = document.getElementById(button.dataset.target);
    target.textContent = "Making a link…";
    button.disabled = true;
    try {
      const response = await send(button.dataset.provision, {
        method: "POST", body: "{}", headers: { "Content-Type": "application/json" },
      });
      if (!response.ok) {
        target.replaceChildren(el("span", { class: "field-error", role: "alert", text: await errorText(response) }));
        return;
      }
      const link = await response.json();
      const expires = new Date(link.expires_at * 1000);
      const position = button.dataset.target.replace("prov-", "");
      target.replaceChildren(
        el("img", { src: link.qr_png_data_uri, alt: "QR code of the provisioning link for device " + position }),
        el("a", { href: link.url, class: "provision-url", id: "provision-url-" + position, text: link.url }),
        el("p", { class: "hint", text: "Works once, until " + expires.toLocaleString() + "." }),
      );
    } catch (e) {
      if (e.message !== "logged out") target.textContent = "The server did not answer.";
    } finally {
      button.disabled = false;
    }
  });

  // ---------------------------------------------------------------- credential rotation (admin)
  document.addEventListener("click", async (event) => {
    const button = event.target.closest && event.target.closest("button[data-rotate]");
    if (!button || (button.dataset.confirm && !window.confirm(button.dataset.confirm))) return;
    const target = document.getElementById(button.dataset.target);
    button.disabled = true;
    try {
      const response = await send(button.dataset.rotate, {
        method: "POST", body: "{}", headers: { "Content-Type": "application/json" },
      });
      if (!response.ok) {
        target.replaceChildren(el("span", { class: "field-error", role: "alert", text: await errorText(response) }));
        return;
      }
      const body = await response.json();
      const until = body.previous_secret_valid_until;
      target.replaceChildren(el("p", { class: "hint", role: "status", text: "New secret issued"
        + (until ? "; the old one works until " + new Date(until * 1000).toLocaleString() : "; the old one no longer works")
        + ". Give the phone its settings with a provisioning link." }));
    } catch (e) {
      if (e.message !== "logged out") target.textContent = "The server did not answer.";
    } finally {
      button.disabled = false;
    }
  });

  // ---------------------------------------------------------------- CSV import (admin)
  const importForm = document.querySelector("form[data-import]");
  if (importForm) {
    importForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = document.getElementById("import-result");
      const file = importForm.querySelector("input[type=file]").files[0];
      if (!file) return;
      const params = new URLSearchParams();
      for (const name of ["dry_run", "prune", "links"]) {
        if (importForm.elements[name].checked) params.set(name, "true");
      }
      result.textContent = "Importing…";
      const response = await send(importForm.dataset.import + "?" + params, {
        method: "POST", body: await file.text(), headers: { "Content-Type": "text/csv" },
      });
      let body = null;
      try { body = await response.json(); } catch (e) { body = null; }
      if (response.ok && body) {
        const c = (x) => `${x.created} created, ${x.updated} updated, ${x.unchanged} unchanged, ${x.removed} removed`;
        result.replaceChildren(
          el("p", { class: "notice", role: "status",
            text: (body.dry_run ? "Checked (nothing changed): " : body.changed ? "Imported: " : "Nothing to change: ")
              + "accounts " + c(body.accounts) + "; devices " + c(body.devices) + "." }),
        );
        if (body.new_devices && body.new_devices.length) {
          const list = el("ul");
          for (const d of body.new_devices) {
            const li = el("li");
            li.append(el("a", { href: "/admin/accounts/" + encodeURIComponent(d.account) + "#device-" + d.position,
              text: d.account + " device " + d.position + " (" + d.auth_username + ")" }));
            if (d.url) {
              li.append(document.createTextNode(": provisioning link "),
                el("a", { href: d.url, class: "provision-url", text: d.url }));
            }
            list.append(li);
          }
          result.append(el("p", { text: "New devices (give each a provisioning link):" }), list);
        }
        return;
      }
      const problems = el("ul", { class: "error" });
      for (const e of (body && body.errors) || []) {
        problems.append(el("li", { text: "Line " + e.line + (e.column ? ", column " + e.column : "") + ": " + e.message }));
      }
      const listed = problems.childElementCount > 0;
      result.replaceChildren(el("p", { class: "error", role: "alert",
        text: "Nothing was imported" + (listed ? "; fix these lines and try again:"
          : ": " + ((body && (body.detail || body.message)) || response.statusText)) }), problems);
    });
  }

  // ---------------------------------------------------------------- presence (user)
  const presenceSection = document.getElementById("presence-section");
  if (presenceSection && window.EventSource) {
    const list = document.getElementById("presence");
    const note = document.getElementById("presence-note");
    const rows = new Map();
    let opened = false;
    const show = (p) => {
      let row = rows.get(p.account);
      if (!row) {
        row = el("li", { "data-account": p.account });
        rows.set(p.account, row);
        list.append(row);
      }
      row.replaceChildren(
        el("span", { text: (p.name ? p.name + " " : "") + p.account }),
        el("span", { class: "state state-" + p.state, text: p.state }),
      );
    };
    const source = new EventSource(presenceSection.dataset.stream);
    source.addEventListener("snapshot", (e) => {
      opened = true;
      const data = JSON.parse(e.data);
      list.replaceChildren();
      rows.clear();
      for (const p of data) show(p);
      note.textContent = data.length ? "Live: changes show as they happen." : "No colleagues to show.";
    });
    source.addEventListener("presence", (e) => show(JSON.parse(e.data)));
    source.addEventListener("mwi", (e) => {
      const m = JSON.parse(e.data);
      const counts = document.getElementById("vm-counts");
      if (counts) counts.textContent = "(" + m.new + " new, " + m.saved + " saved)";
      if (window.portalVoicemail) window.portalVoicemail();
    });
    source.onerror = () => {
      if (!opened) {
        source.close();
        note.textContent = "Presence is not available on this server.";
      }
    };
  }

  // ---------------------------------------------------------------- voicemail (user)
  const vmSection = document.getElementById("voicemail-section");
  if (vmSection) {
    const list = document.getElementById("voicemail");
    const note = document.getElementById("voicemail-note");
    const counts = document.getElementById("vm-counts");
    const base = vmSection.dataset.voicemail;
    const load = async () => {
      let response;
      try {
        response = await fetch(base, { credentials: "same-origin" });
      } catch (e) {
        note.textContent = "Voicemail did not answer.";
        return;
      }
      if (!response.ok) {
        note.textContent = response.status === 404 || response.status === 503
          ? "Voicemail is not available on this server." : await errorText(response);
        return;
      }
      const box = await response.json();
      counts.textContent = "(" + box.new + " new, " + box.saved + " saved)";
      note.textContent = box.messages.length ? "" : "No messages.";
      list.replaceChildren();
      for (const m of box.messages) {
        const when = new Date(m.received_at * 1000).toLocaleString();
        const who = (m.caller_name ? m.caller_name + " " : "") + (m.caller || "unknown caller");
        const item = el("li", { class: m.heard ? "heard" : "new", "data-id": m.id });
        const audio = el("audio", { controls: true, preload: "none", src: m.audio, "aria-label": "Message from " + who });
        audio.addEventListener("ended", () => { if (!m.heard) act(m, "heard"); });
        const heard = el("button", { type: "button", class: "secondary", text: "Mark as heard" });
        heard.disabled = m.heard;
        heard.addEventListener("click", () => act(m, "heard"));
        const remove = el("button", { type: "button", class: "danger", text: "Delete" });
        remove.addEventListener("click", () => { if (window.confirm("Delete the message from " + who + "?")) act(m, "delete"); });
        item.append(
          el("div", { class: "vm-title", text: (m.heard ? "" : "New: ") + who }),
          el("div", { class: "muted", text: when + " · " + Math.round(m.duration) + " s" }),
          audio, heard, document.createTextNode(" "), remove,
        );
        list.append(item);
      }
    };
    const act = async (m, what) => {
      const url = base + "/" + encodeURIComponent(m.id) + (what === "heard" ? "/heard" : "");
      const response = await send(url, { method: what === "heard" ? "POST" : "DELETE" });
      const status = document.getElementById("live-status");
      if (!response.ok) {
        if (status) status.textContent = await errorText(response);
        return;
      }
      if (status) status.textContent = what === "heard" ? "Message marked as heard." : "Message deleted.";
      await load();
      const first = list.querySelector("button:not([disabled])");
      if (first) first.focus();
    };
    window.portalVoicemail = load;
    load();
  }
})();
