// The case desk in the console: a "Cases" tab over /api/v1/cases (list, filters, bulk actions, a case's
// history and actions, a participant's remediation answer) and the monthly report download. Self-contained:
// it adds its own tab and section, reads the key the sign-in stored, and takes its words from
// cases-i18n.json in the page's language (<html lang>), so console.js needs no change for it.
"use strict";

(() => {
  const NOTE_MAX = 16000;
  const casesState = { me: null, words: null, lang: null, cases: [], selected: new Set(), open: null };
  const q = (selector, root = document) => root.querySelector(selector);

  function key() {
    return sessionStorage.getItem("sandboxwatch-key") || "";
  }

  async function call(path, options = {}) {
    const response = await fetch(path, {
      ...options,
      headers: { Authorization: `Bearer ${key()}`, "Content-Type": "application/json", ...(options.headers || {}) },
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      throw new Error(`${response.status}: ${detail}`);
    }
    return response;
  }

  const getJson = async (path, options) => (await call(path, options)).json();

  async function words() {
    const lang = (document.documentElement.lang || "en").toLowerCase().startsWith("vi") ? "vi" : "en";
    if (casesState.words === null || casesState.lang !== lang) {
      const all = await (await fetch("/console/cases-i18n.json")).json();
      casesState.words = all[lang];
      casesState.lang = lang;
    }
    return casesState.words;
  }

  // ct(name, values): a word of this view in the page's language (English if a key were missing).
  function ct(name, values = {}) {
    const text = (casesState.words && casesState.words[name]) || name;
    return text.replace(/\{(\w+)\}/g, (_, field) => String(values[field] ?? ""));
  }

  function element(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name === "text") node.textContent = value;
      else if (name === "hidden") node.hidden = Boolean(value);
      else node.setAttribute(name, value);
    }
    node.append(...children);
    return node;
  }

  const role = () => (casesState.me ? casesState.me.role : "");

  function options(select, values, label) {
    select.replaceChildren(...values.map((value) => element("option", { value, text: label(value) })));
    return select;
  }

  function buildSection() {
    const section = element("section", { id: "tab-cases", class: "tab", hidden: true });
    section.innerHTML = `
      <h2 id="cases-title"></h2>
      <form id="cases-filter">
        <label><span data-w="filter.state"></span> <select name="state" id="cases-state"></select></label>
        <label class="desk-only"><span data-w="filter.assignee"></span> <input name="assignee" id="cases-assignee"></label>
        <label><input type="checkbox" name="overdue" id="cases-overdue"> <span data-w="filter.overdue"></span></label>
        <button type="submit" id="cases-filter-button" data-w="filter.button"></button>
        <span id="cases-count"></span>
      </form>
      <div id="cases-bulk" class="regulator-only">
        <span id="cases-selected"></span>
        <button type="button" id="bulk-acknowledge" data-w="bulk.acknowledge"></button>
        <input id="bulk-assignee" data-wp="field.assignee">
        <button type="button" id="bulk-assign" data-w="bulk.assign"></button>
        <select id="bulk-resolution"></select>
        <input id="bulk-reason" data-wp="field.reason">
        <button type="button" id="bulk-resolve" data-w="bulk.resolve"></button>
      </div>
      <p id="cases-message" role="status"></p>
      <table id="cases-table"><thead><tr>
        <th class="regulator-only"><input type="checkbox" id="cases-all"></th>
        <th data-w="col.due"></th><th data-w="col.participant"></th><th data-w="col.severity"></th>
        <th data-w="col.rule"></th><th data-w="col.state"></th><th class="desk-only" data-w="col.assignee"></th>
        <th data-w="col.message"></th></tr></thead><tbody></tbody></table>
      <div id="case-detail" hidden>
        <button type="button" id="case-close" data-w="detail.close"></button>
        <h3><code id="case-id"></code></h3>
        <dl id="case-fields"></dl>
        <div id="case-actions" class="regulator-only">
          <button type="button" id="case-acknowledge" data-w="action.acknowledge"></button>
          <select id="case-resolution"></select>
          <input id="case-reason" data-wp="field.reason">
          <button type="button" id="case-resolve" data-w="action.resolve"></button>
          <button type="button" id="case-reopen" data-w="action.reopen"></button>
          <input id="case-assignee" data-wp="field.assignee">
          <button type="button" id="case-assign" data-w="action.assign"></button>
        </div>
        <form id="case-answer" class="participant-only">
          <h4 data-w="answer.title"></h4>
          <textarea id="answer-text" rows="4" cols="70" data-wp="answer.placeholder"></textarea>
          <label><span data-w="answer.file"></span> <input type="file" id="answer-file" accept=".txt,.md,text/plain"></label>
          <button type="submit" id="answer-send" data-w="answer.send"></button>
        </form>
        <h4 data-w="detail.history"></h4>
        <ol id="case-history"></ol>
      </div>
      <form id="case-report">
        <h3 data-w="report.title"></h3>
        <select id="report-participant"></select>
        <input id="report-month" data-wp="report.month" pattern="\\d{4}-\\d{2}">
        <button type="button" id="report-pdf" data-w="report.pdf"></button>
        <button type="button" id="report-csv" data-w="report.csv"></button>
      </form>`;
    return section;
  }

  function label() {
    const section = q("#tab-cases");
    q("#cases-title").textContent = ct("title");
    for (const node of section.querySelectorAll("[data-w]")) node.textContent = ct(node.dataset.w);
    for (const node of section.querySelectorAll("[data-wp]")) node.placeholder = ct(node.dataset.wp);
    const stateValue = q("#cases-state").value;
    options(q("#cases-state"), ["", "open", "acknowledged", "resolved"], (v) => (v ? ct(`state.${v}`) : ct("filter.any")));
    q("#cases-state").value = stateValue;
    for (const id of ["#bulk-resolution", "#case-resolution"]) {
      const chosen = q(id).value;
      options(q(id), ["remedied", "accepted_risk", "false_positive"], (v) => ct(`resolution.${v}`));
      if (chosen) q(id).value = chosen;
    }
    const tab = q("nav button[data-tab='cases']");
    if (tab) tab.textContent = ct("tab");
  }

  function byRole() {
    const section = q("#tab-cases");
    for (const node of section.querySelectorAll(".regulator-only")) node.hidden = role() !== "regulator";
    for (const node of section.querySelectorAll(".desk-only")) node.hidden = role() === "participant";
    for (const node of section.querySelectorAll(".participant-only")) node.hidden = role() !== "participant";
  }

  function say(text, isError = false) {
    const message = q("#cases-message");
    message.textContent = text;
    message.classList.toggle("error", isError);
  }

  // Times the store wrote (due, opened, transitions) are UTC: said so, not left for the reader to guess.
  const utc = (text) => (text ? `${text} UTC` : "");

  function stateText(state) {
    return ct(`state.${state}`);
  }

  function row(item) {
    const tr = element("tr", { class: "case-row" });
    tr.dataset.findingId = item.finding_id;
    tr.dataset.participant = item.participant;
    tr.dataset.state = item.state;
    if (item.overdue) tr.classList.add("overdue");
    if (role() === "regulator") {
      const box = element("input", { type: "checkbox", class: "case-select" });
      box.checked = casesState.selected.has(item.finding_id);
      box.addEventListener("click", (event) => event.stopPropagation());
      box.addEventListener("change", () => {
        if (box.checked) casesState.selected.add(item.finding_id);
        else casesState.selected.delete(item.finding_id);
        showSelected();
      });
      tr.appendChild(element("td", {}, box));
    }
    const due = item.overdue ? `${utc(item.due)} (${ct("overdue")})` : utc(item.due);
    tr.append(
      element("td", { text: due, class: item.overdue ? "overdue" : "" }),
      element("td", { text: item.participant }),
      element("td", { text: item.severity, class: `sev-${item.severity}` }),
      element("td", { text: item.rule }),
      element("td", { text: stateText(item.state), class: `case-state state-${item.state}` }),
    );
    if (role() !== "participant") tr.appendChild(element("td", { text: item.assignee || "" }));
    tr.appendChild(element("td", { text: item.message }));
    tr.addEventListener("click", () => showCase(item.finding_id));
    return tr;
  }

  function showSelected() {
    q("#cases-selected").textContent = ct("bulk.selected", { count: casesState.selected.size });
  }

  function filterQuery() {
    const params = new URLSearchParams({ limit: "500" });
    if (q("#cases-state").value) params.set("state", q("#cases-state").value);
    if (role() !== "participant" && q("#cases-assignee").value.trim()) params.set("assignee", q("#cases-assignee").value.trim());
    if (q("#cases-overdue").checked) params.set("overdue", "true");
    return params;
  }

  async function loadCases() {
    const table = q("#cases-table");
    table.dataset.state = "loading";
    try {
      casesState.cases = await getJson(`/api/v1/cases?${filterQuery()}`);
      q("#cases-table tbody").replaceChildren(...casesState.cases.map(row));
      q("#cases-count").textContent = ct("count", { count: casesState.cases.length });
    } catch (error) {
      say(error.message, true);
    }
    table.dataset.state = "loaded";
  }

  function field(list, name, value) {
    list.append(element("dt", { text: name }), element("dd", { text: value ?? "" }));
  }

  async function showCase(findingId) {
    const detail = q("#case-detail");
    detail.dataset.state = "loading";
    try {
      const item = await getJson(`/api/v1/cases/${encodeURIComponent(findingId)}`);
      casesState.open = item;
      detail.hidden = false;
      detail.dataset.findingId = item.finding_id;
      detail.dataset.caseState = item.state;
      q("#case-id").textContent = item.finding_id;
      const fields = q("#case-fields");
      fields.replaceChildren();
      field(fields, ct("col.participant"), item.participant);
      field(fields, ct("col.rule"), `${item.rule} (${item.clause})`);
      field(fields, ct("col.severity"), item.severity);
      field(fields, ct("col.message"), item.message);
      field(fields, ct("col.state"), stateText(item.state));
      if (item.resolution) field(fields, ct("detail.resolution"), ct(`resolution.${item.resolution}`));
      if (role() !== "participant") field(fields, ct("col.assignee"), item.assignee);
      field(fields, ct("detail.opened"), utc(item.opened));
      field(fields, ct("detail.due"), item.overdue ? `${utc(item.due)} (${ct("overdue")})` : utc(item.due));
      const history = q("#case-history");
      history.replaceChildren(
        ...item.history.map((step) => {
          const parts = [utc(step.at), step.actor || "", `${stateText(step.from_state)} → ${stateText(step.to_state)}`, step.action];
          if (step.resolution && step.action === "resolve") parts.push(ct(`resolution.${step.resolution}`));
          if (step.assignee && step.action === "assign") parts.push(step.assignee);
          if (step.reason) parts.push(`“${step.reason}”`);
          const li = element("li", { class: `transition action-${step.action}`, text: parts.filter(Boolean).join(" · ") });
          if (step.note) li.appendChild(element("pre", { class: "answer-note", text: step.note }));
          return li;
        }),
      );
      if (!item.history.length) history.appendChild(element("li", { text: ct("detail.no_history") }));
      q("#case-acknowledge").disabled = item.state !== "open";
      q("#case-resolve").disabled = item.state === "resolved";
      q("#case-reopen").disabled = item.state !== "resolved";
      q("#case-assign").disabled = item.state === "resolved";
      q("#answer-send").disabled = item.state === "resolved";
      detail.scrollIntoView({ block: "nearest" });
    } catch (error) {
      say(error.message, true);
    }
    detail.dataset.state = "loaded";
  }

  async function transition(body) {
    const findingId = q("#case-detail").dataset.findingId;
    try {
      await call(`/api/v1/cases/${encodeURIComponent(findingId)}/transitions`, { method: "POST", body: JSON.stringify(body) });
      say("");
    } catch (error) {
      say(error.message, true);
    }
    await Promise.all([showCase(findingId), loadCases()]);
  }

  async function bulk(body) {
    const ids = [...casesState.selected];
    if (!ids.length) return;
    try {
      const result = await getJson("/api/v1/cases/bulk", { method: "POST", body: JSON.stringify({ ...body, finding_ids: ids }) });
      const refused = result.refused.map((r) => `${r.finding_id.slice(0, 12)}: ${r.reason}`).join("; ");
      say(`${ct("bulk.done", { applied: result.applied.length, refused: result.refused.length })}${refused ? ` (${refused})` : ""}`, result.refused.length > 0);
    } catch (error) {
      say(error.message, true);
    }
    casesState.selected.clear();
    q("#cases-all").checked = false;
    showSelected();
    await loadCases();
  }

  async function answer(event) {
    event.preventDefault();
    const findingId = q("#case-detail").dataset.findingId;
    const file = q("#answer-file").files[0];
    let note = q("#answer-text").value;
    let filename = "";
    if (file) {
      note = await file.text();
      filename = file.name;
    }
    if (note.length > NOTE_MAX) {
      say(ct("answer.too_big", { max: NOTE_MAX }), true);
      return;
    }
    try {
      await call(`/api/v1/cases/${encodeURIComponent(findingId)}/answers`, { method: "POST", body: JSON.stringify({ note, filename }) });
      q("#answer-text").value = "";
      q("#answer-file").value = "";
      say("");
    } catch (error) {
      say(error.message, true);
    }
    await showCase(findingId);
  }

  async function download(format) {
    const participant = q("#report-participant").value;
    const month = q("#report-month").value.trim();
    try {
      const response = await call(
        `/api/v1/participants/${encodeURIComponent(participant)}/reports/monthly?month=${encodeURIComponent(month)}&format=${format}`,
      );
      const link = element("a", { href: URL.createObjectURL(await response.blob()), download: `sandboxwatch-${participant}-${month}.${format}` });
      link.click();
      say("");
    } catch (error) {
      say(error.message, true);
    }
  }

  async function open() {
    for (const button of document.querySelectorAll("nav button")) button.classList.toggle("active", button.dataset.tab === "cases");
    for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== "tab-cases";
    await words();
    casesState.me = await getJson("/api/v1/me");
    label();
    byRole();
    showSelected();
    const participants = await getJson("/api/v1/participants");
    const chosen = q("#report-participant").value;
    options(q("#report-participant"), participants, (p) => p);
    if (chosen) q("#report-participant").value = chosen;
    if (!q("#report-month").value) {
      const now = new Date();
      q("#report-month").value = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 15)).toISOString().slice(0, 7);
    }
    await loadCases();
  }

  function install() {
    const nav = q("main#app nav");
    if (!nav || q("#tab-cases")) return;
    document.head.appendChild(element("link", { rel: "stylesheet", href: "/console/cases.css" }));
    const button = element("button", { type: "button", "data-tab": "cases", text: "Cases" });
    nav.appendChild(button);
    const section = buildSection();
    const detail = q("aside#detail");
    if (detail) detail.before(section);
    else q("main#app").appendChild(section);
    button.addEventListener("click", open);
    q("#cases-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      loadCases();
    });
    q("#cases-all").addEventListener("change", (event) => {
      for (const item of casesState.cases) {
        if (event.target.checked) casesState.selected.add(item.finding_id);
        else casesState.selected.delete(item.finding_id);
      }
      for (const box of document.querySelectorAll("#cases-table .case-select")) box.checked = event.target.checked;
      showSelected();
    });
    q("#bulk-acknowledge").addEventListener("click", () => bulk({ action: "acknowledge" }));
    q("#bulk-assign").addEventListener("click", () => bulk({ action: "assign", assignee: q("#bulk-assignee").value }));
    q("#bulk-resolve").addEventListener("click", () =>
      bulk({ action: "resolve", resolution: q("#bulk-resolution").value, reason: q("#bulk-reason").value }),
    );
    q("#case-close").addEventListener("click", () => {
      q("#case-detail").hidden = true;
    });
    q("#case-acknowledge").addEventListener("click", () => transition({ action: "acknowledge" }));
    q("#case-resolve").addEventListener("click", () =>
      transition({ action: "resolve", resolution: q("#case-resolution").value, reason: q("#case-reason").value }),
    );
    q("#case-reopen").addEventListener("click", () => transition({ action: "reopen", reason: q("#case-reason").value }));
    q("#case-assign").addEventListener("click", () => transition({ action: "assign", assignee: q("#case-assignee").value }));
    q("#case-answer").addEventListener("submit", answer);
    q("#report-pdf").addEventListener("click", () => download("pdf"));
    q("#report-csv").addEventListener("click", () => download("csv"));
    // Follow the page's language when the console switches it.
    new MutationObserver(async () => {
      if (q("#tab-cases").hidden) return;
      await words();
      label();
      showSelected();
      q("#cases-count").textContent = ct("count", { count: casesState.cases.length });
      q("#cases-table tbody").replaceChildren(...casesState.cases.map(row));
    }).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
    words().then(label).catch(() => {});
  }

  install();
})();
