// The regulators' desk on top of console.js: the overview (charts drawn with the vendored uPlot, served
// from the package), licence limits in plain words, and the participant's self-check upload.
"use strict";

const SEVERITY_COLOURS = { info: "#7f8c8d", warning: "#b9770e", breach: "#c0392b", critical: "#8b0000" };
const BAND_COLOURS = { ok: "#1e8449", near: "#b9770e", breach: "#c0392b" };
const UPLOAD_LIMIT = 20 * 1024 * 1024;

const element = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

const daySeconds = (isoDay) => Date.parse(`${isoDay}T00:00:00Z`) / 1000;

function chart(target, days, series, { percent = false, threshold = null } = {}) {
  const width = Math.max(320, Math.min(560, target.clientWidth || 560));
  const xs = days.map(daySeconds);
  const data = [xs, ...series.map((s) => s.values)];
  const lines = series.map((s) => ({
    label: s.label,
    stroke: s.colour,
    width: 2,
    spanGaps: true,
    points: { show: days.length <= 31 || s.sparse === true, size: 6, fill: s.colour },
    value: (u, v) => (v == null ? "-" : percent ? `${formatNumber(v * 100, 1)}%` : formatNumber(v)),
  }));
  if (threshold !== null) {
    data.push(xs.map(() => threshold));
    lines.push({ label: t("ui.overview.threshold"), stroke: "#555", dash: [6, 4], width: 1, points: { show: false },
                 value: () => (percent ? `${formatNumber(threshold * 100)}%` : formatNumber(threshold)) });
  }
  const options = {
    width,
    height: 180,
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(max, threshold ?? 0, 1) * 1.1] } },
    axes: [
      {
        space: 90, // a dd/mm/yyyy label is ~75px wide: ticks a day, a week or a month apart, never overlapping
        incrs: [1, 2, 7, 14, 28, 56, 91, 182].map((d) => d * 86400),
        values: (u, values) => values.map((v) => formatDay(new Date(v * 1000).toISOString().slice(0, 10))),
      },
      {
        values: (u, values) => values.map((v) => (percent ? `${formatNumber(v * 100)}%` : formatNumber(v))),
        incrs: percent ? [0.1, 0.25, 0.5, 1, 2, 5, 10] : [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10000],
      },
    ],
    series: [{ label: t("ui.col.time"), value: (u, v) => (v == null ? "" : formatDay(new Date(v * 1000).toISOString().slice(0, 10))) }, ...lines],
  };
  return new uPlot(options, data, target);
}

function limitLine(reading) {
  const line = element("div", "plain-limit");
  line.dataset.rule = reading.rule;
  line.dataset.limit = reading.limit;
  line.dataset.band = reading.band;
  line.dataset.direction = reading.direction;
  const bar = element("span", "bar");
  const fill = element("span", `band-${reading.band}`);
  const level = reading.level === null ? 0 : Number(reading.level);
  fill.style.width = `${Math.min(level, 1) * 100}%`;
  bar.appendChild(fill);
  line.append(bar, " ", element("span", "limit-text", reading.text), " ",
              element("span", `band-label band-${reading.band}`, reading.band_text));
  line.title = `${reading.rule} ${reading.limit}`;
  return line;
}

function clauseLine(reading) {
  const clause = element("div", "clause");
  clause.append(element("span", "clause-label", `${t("ui.overview.clause")}: `), element("q", null, reading.clause));
  return clause;
}

// The "Limit utilisation" tab: each limit in plain words, coloured by headroom to the licence's threshold.
async function limitsSection(participant) {
  const section = element("div", "participant-utilisation");
  section.dataset.participant = participant;
  section.appendChild(element("h3", null, participant));
  try {
    const readings = await json(`/api/v1/participants/${encodeURIComponent(participant)}/limits?lang=${i18n.lang}`);
    if (!readings.length) section.appendChild(document.createTextNode(t("ui.limits.none")));
    for (const reading of readings) {
      section.appendChild(limitLine(reading));
      section.appendChild(clauseLine(reading));
    }
  } catch (error) {
    section.appendChild(document.createTextNode(error.message));
  }
  return section;
}

function openTable(items) {
  const table = element("table", "open-by-age");
  const head = element("tr");
  for (const name of ["", "warning", "breach", "critical"]) head.appendChild(element("th", null, name ? t(`severity.${name}`) : ""));
  table.appendChild(element("thead")).appendChild(head);
  const body = table.appendChild(element("tbody"));
  for (const item of items) {
    const row = element("tr");
    row.dataset.bucket = item.bucket;
    row.appendChild(element("th", null, item.label));
    for (const name of ["warning", "breach", "critical"]) row.appendChild(element("td", `sev-${name}`, formatNumber(item[name])));
    body.appendChild(row);
  }
  return table;
}

function participantCard(overview, item) {
  const card = element("section", "overview-participant");
  card.dataset.participant = item.participant;
  card.appendChild(element("h3", null, `${item.participant}${item.licence ? ` · ${item.licence}` : ""}`));

  card.appendChild(element("h4", null, t("ui.overview.findings_per_day")));
  const findings = element("div", "chart findings-chart");
  card.appendChild(findings);
  const severities = ["critical", "breach", "warning", "info"];
  card._charts = [[findings, overview.days, severities.map((s) => ({
    label: t(`severity.${s}`), colour: SEVERITY_COLOURS[s], values: item.findings_per_day[s],
  }))]];
  if (!item.findings_total) card.appendChild(element("p", "muted", t("ui.overview.no_findings")));

  card.appendChild(element("h4", null, t("ui.overview.open_by_age")));
  card.appendChild(openTable(item.open_by_age));
  card.appendChild(element("p", "muted", t("ui.overview.open_note")));

  card.appendChild(element("h4", null, t("ui.overview.utilisation")));
  if (!item.limits.length) card.appendChild(element("p", "muted", t("ui.limits.none")));
  for (const reading of item.limits) {
    const block = element("div", "overview-limit");
    block.dataset.rule = reading.rule;
    block.dataset.limit = reading.limit;
    const plot = element("div", "chart limit-chart");
    const side = element("div", "limit-side");
    side.append(limitLine(reading), clauseLine(reading));
    block.append(plot, side);
    card.appendChild(block);
    const byDay = Object.fromEntries(reading.series.map((s) => [s.day, s.level === null ? null : Number(s.level)]));
    card._charts.push([plot, overview.days, [{
      label: `${reading.rule} ${reading.limit}`, colour: BAND_COLOURS[reading.band], sparse: true,
      values: overview.days.map((d) => byDay[d] ?? null),
    }], { percent: true, threshold: 1 }]);
  }
  return card;
}

let overviewRequest = 0;

async function showOverview() {
  const box = $("#overview");
  const request = ++overviewRequest; // only the latest request draws: an earlier, slower one is dropped
  box.dataset.state = "loading";
  const params = new URLSearchParams({ lang: i18n.lang });
  const from = $("#overview-from").value;
  const to = $("#overview-to").value;
  if (from) params.set("from", `${from}T00:00:00+07:00`);
  if (to) params.set("to", `${to}T23:59:59+07:00`);
  try {
    const overview = await json(`/api/v1/overview?${params}`);
    if (request !== overviewRequest) return;
    const cards = overview.participants.map((item) => participantCard(overview, item));
    $("#overview-period").textContent = t("ui.overview.period", {
      from: formatDay(overview.days[0]), to: formatDay(overview.days[overview.days.length - 1]),
    });
    box.replaceChildren(...cards);
    for (const card of cards) for (const [target, days, series, options] of card._charts) chart(target, days, series, options);
    box.dataset.state = "loaded";
  } catch (error) {
    if (request !== overviewRequest) return;
    box.replaceChildren(element("p", "error", error.message));
    box.dataset.state = "failed";
  }
}

function fillUploadTable(table, rows, cells) {
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const row of rows) {
    const tr = element("tr");
    for (const [text, className] of cells(row)) tr.appendChild(element("td", className, text));
    body.appendChild(tr);
  }
  table.hidden = !rows.length;
}

async function selfCheck(event) {
  event.preventDefault();
  const file = $("#upload-file").files[0];
  const out = $("#upload-result");
  const verdict = $("#upload-verdict");
  out.dataset.state = "checking";
  verdict.textContent = t("ui.upload.checking");
  verdict.className = "";
  $("#upload-summary").textContent = "";
  fillUploadTable($("#upload-findings"), [], () => []);
  fillUploadTable($("#upload-errors"), [], () => []);
  if (!file) return;
  const participant = $("#upload-participant").value;
  const params = new URLSearchParams({ lang: i18n.lang, name: file.name.slice(0, 200) });
  if ($("#upload-store").checked) params.set("store", "true");
  const type = file.name.toLowerCase().endsWith(".csv") ? "text/csv" : "application/x-ndjson";
  const response = await fetch(`/api/v1/participants/${encodeURIComponent(participant)}/self-check?${params}`, {
    method: "POST", body: file, headers: { Authorization: `Bearer ${state.key}`, "Content-Type": type },
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = body.detail || {};
    const reason = typeof detail === "string" ? detail : detail.reason || JSON.stringify(detail);
    verdict.textContent = t("ui.upload.refused", { reason });
    verdict.className = "error";
    if (detail.lines) $("#upload-summary").textContent = `${t("ui.col.line")}: ${detail.lines.join(", ")}`;
    if (detail.errors) fillUploadTable($("#upload-errors"), detail.errors, (e) => [[e.line], [e.field || ""], [e.reason]]);
    out.dataset.state = "refused";
    return;
  }
  $("#upload-summary").textContent = `${body.summary} · ${body.stored ? t("ui.upload.stored", { count: body.stored })
    : t("ui.upload.not_stored")}${body.not_stored ? ` (${body.not_stored})` : ""}`;
  verdict.textContent = t(body.failed ? "ui.upload.verdict_fail" : "ui.upload.verdict_ok");
  verdict.className = body.failed ? "sev-breach" : "ok";
  fillUploadTable($("#upload-findings"), body.findings, (f) => [
    [formatTime(f.ts)], [t(`severity.${f.severity}`), `sev-${f.severity}`], [f.rule], [f.subject], [f.message_text],
  ]);
  fillUploadTable($("#upload-errors"), body.errors, (e) => [[e.line], [e.field || ""], [e.reason]]);
  out.dataset.state = body.failed ? "failed" : "clean";
  out.dataset.findings = String(body.findings.length);
}

async function startDesk() {
  const select = $("#upload-participant");
  select.replaceChildren();
  for (const participant of await json("/api/v1/participants")) select.appendChild(element("option", null, participant));
  const participantRole = state.me.role === "participant";
  if (participantRole) select.value = state.me.participant;
  $("#upload-store-label").hidden = !participantRole;
  $("#upload-hint").textContent = t("ui.upload.hint", { size: `${formatNumber(UPLOAD_LIMIT / 1024 / 1024)} MiB` });
  // Auditors only read: the upload is for participants (and regulators checking a participant's file).
  document.querySelector("nav button[data-tab='self-check']").hidden = state.me.role === "auditor";
}

$("#overview-form").addEventListener("submit", (event) => { event.preventDefault(); showOverview(); });
$("#upload-form").addEventListener("submit", selfCheck);
$("#language").addEventListener("change", (event) => chooseLanguage(event.target.value));
