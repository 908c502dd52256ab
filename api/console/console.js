// The regulators' console: plain JavaScript over the sandboxwatch API, so it needs no build step.
"use strict";

const state = { key: sessionStorage.getItem("sandboxwatch-key"), me: null, feedTimer: null };
const $ = (selector) => document.querySelector(selector);

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${state.key}`, "Content-Type": "application/json", ...(options.headers || {}) },
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(`${response.status}: ${typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)}`);
  }
  return response;
}

const json = async (path, options) => (await api(path, options)).json();

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (className) td.className = className;
  row.appendChild(td);
}

function fillFindings(tbody, findings) {
  tbody.replaceChildren();
  for (const f of findings) {
    const row = document.createElement("tr");
    row.className = "finding-row";
    row.dataset.findingId = f.finding_id;
    row.dataset.participant = f.participant;
    cell(row, formatTime(f.ts));
    cell(row, f.participant);
    cell(row, t(`severity.${f.severity}`), `sev-${f.severity}`);
    cell(row, f.rule);
    cell(row, f.subject);
    cell(row, f.message_text ?? f.message);
    row.lastChild.title = f.message;
    row.addEventListener("click", () => showFinding(f.finding_id));
    tbody.appendChild(row);
  }
}

async function refreshFeed() {
  try {
    fillFindings($("#feed tbody"), await json(`/api/v1/findings?limit=50&lang=${i18n.lang}`));
    $("#feed-updated").textContent = t("ui.updated", { time: new Date().toLocaleTimeString(i18n.lang === "vi" ? "vi-VN" : "en-GB") });
  } catch (error) {
    $("#feed-updated").textContent = t("ui.update_failed", { reason: error.message });
  }
}

// The whole tab is swapped in at once, so a reader never mistakes a half-drawn page for the full set of participants.
async function showUtilisation() {
  const box = $("#utilisation");
  box.dataset.state = "loading";
  const participants = await json("/api/v1/participants");
  box.replaceChildren(...(await Promise.all(participants.map(limitsSection))));
  box.dataset.state = "loaded";
}

function searchQuery() {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData($("#search-form"))) if (value) params.set(name, value);
  return params;
}

async function search(event) {
  event?.preventDefault();
  try {
    const params = searchQuery();
    params.set("lang", i18n.lang);
    const findings = await json(`/api/v1/findings?${params}`);
    fillFindings($("#results tbody"), findings);
    $("#search-count").textContent = t("ui.search.count", { count: formatNumber(findings.length) });
  } catch (error) {
    $("#search-count").textContent = error.message;
  }
}

async function exportFindings(format) {
  const params = searchQuery();
  params.set("format", format);
  const blob = await (await api(`/api/v1/findings?${params}`)).blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `findings.${format}`;
  link.click();
}

async function showFinding(findingId) {
  const f = await json(`/api/v1/findings/${encodeURIComponent(findingId)}?lang=${i18n.lang}`);
  $("#detail").hidden = false;
  $("#detail").dataset.findingId = f.finding_id;
  $("#detail-id").textContent = f.finding_id;
  const fields = $("#detail-fields");
  fields.replaceChildren();
  for (const name of ["participant", "licence", "rule", "kind", "severity", "subject", "ts", "observed", "limit", "clause", "message_text", "message"]) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = f[name] ?? "";
    fields.append(dt, dd);
  }
  const evidence = $("#evidence");
  evidence.replaceChildren();
  for (const item of f.evidence_events) {
    const pre = document.createElement("pre");
    pre.className = "evidence-event";
    pre.textContent = item.event
      ? JSON.stringify(item.event, null, 2)
      : item.raw !== undefined
        ? `${item.event_id} (stored as received, not plain JSON):\n${item.raw}`
        : `${item.event_id} (not in the store)`;
    evidence.appendChild(pre);
  }
  const notes = $("#notes");
  notes.replaceChildren();
  for (const note of f.notes) {
    const li = document.createElement("li");
    li.textContent = `${note.created} ${note.author} [${note.status}] ${note.note}`;
    notes.appendChild(li);
  }
  $("#note-form").hidden = !(state.me && state.me.role === "regulator");
}

async function addNote(event) {
  event.preventDefault();
  const form = new FormData($("#note-form"));
  const findingId = $("#detail").dataset.findingId;
  await api(`/api/v1/findings/${encodeURIComponent(findingId)}/notes`, {
    method: "POST",
    body: JSON.stringify({ status: form.get("status"), note: form.get("note") }),
  });
  $("#note-text").value = "";
  await showFinding(findingId);
}

function showTab(name) {
  for (const button of document.querySelectorAll("nav button")) button.classList.toggle("active", button.dataset.tab === name);
  for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== `tab-${name}`;
  if (name === "utilisation") showUtilisation();
  if (name === "overview") showOverview();
}

async function start() {
  try {
    state.me = await json("/api/v1/me");
  } catch (error) {
    sessionStorage.removeItem("sandboxwatch-key");
    state.key = null;
    $("#login-error").textContent = t("ui.sign_in_failed", { reason: error.message });
    return;
  }
  await languageForUser(state.me.name);
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#logout").hidden = false;
  const who = $("#whoami");
  who.hidden = false;
  who.textContent = `${state.me.name} · ${state.me.role}${state.me.participant ? ` · ${state.me.participant}` : ""}`;
  who.dataset.role = state.me.role;
  const select = $("#search-participant");
  for (const participant of await json("/api/v1/participants")) {
    const option = document.createElement("option");
    option.textContent = participant;
    select.appendChild(option);
  }
  await startDesk();
  await refreshFeed();
  state.feedTimer = setInterval(refreshFeed, 5000);
}

$("#login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = $("#login-key").value.trim();
  sessionStorage.setItem("sandboxwatch-key", state.key);
  start();
});
$("#logout").addEventListener("click", () => {
  sessionStorage.removeItem("sandboxwatch-key");
  location.reload();
});
for (const button of document.querySelectorAll("nav button")) button.addEventListener("click", () => showTab(button.dataset.tab));
$("#search-form").addEventListener("submit", search);
$("#export-csv").addEventListener("click", () => exportFindings("csv"));
$("#export-parquet").addEventListener("click", () => exportFindings("parquet"));
$("#detail-close").addEventListener("click", () => { $("#detail").hidden = true; });
$("#note-form").addEventListener("submit", addNote);
document.addEventListener("languagechange", () => {
  if (!state.me) return;
  refreshFeed();
  const open = document.querySelector("nav button.active")?.dataset.tab;
  if (open === "utilisation" || open === "overview") showTab(open);
  startDesk();
});
loadLanguage(initialLanguage()).then(() => { if (state.key) start(); });
