// The console's two languages. Sentences come from i18n/<lang>.json (the same catalogue the API writes its
// plain-language texts from); numbers and dates follow the language (vi: 5.000 tỷ, 95,2%, dd/mm/yyyy).
// The choice is kept per user (per key name) in this browser, and sent to the API as ?lang=.
"use strict";

const i18n = {
  languages: ["en", "vi"],
  lang: "en",
  messages: {},
  user: null,
};

function t(key, fields = {}) {
  const template = i18n.messages[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => (fields[name] ?? `{${name}}`));
}

function initialLanguage() {
  const stored = localStorage.getItem("sandboxwatch-lang");
  if (i18n.languages.includes(stored)) return stored;
  return (navigator.language || "en").toLowerCase().startsWith("vi") ? "vi" : "en";
}

async function loadLanguage(lang) {
  const response = await fetch(`/console/i18n/${lang}.json`);
  i18n.messages = await response.json();
  i18n.lang = lang;
  document.documentElement.lang = lang;
  document.title = t("ui.title");
  for (const element of document.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of document.querySelectorAll("[data-i18n-placeholder]")) {
    element.placeholder = t(element.dataset.i18nPlaceholder);
  }
  const select = document.getElementById("language");
  if (select) select.value = lang;
}

// Called once the user is known: their own stored choice wins over the browser's.
async function languageForUser(name) {
  i18n.user = name;
  const own = localStorage.getItem(`sandboxwatch-lang:${name}`);
  if (i18n.languages.includes(own) && own !== i18n.lang) await loadLanguage(own);
}

async function chooseLanguage(lang) {
  localStorage.setItem("sandboxwatch-lang", lang);
  if (i18n.user) localStorage.setItem(`sandboxwatch-lang:${i18n.user}`, lang);
  await loadLanguage(lang);
  document.dispatchEvent(new CustomEvent("languagechange"));
}

function formatNumber(value, digits = 0) {
  return new Intl.NumberFormat(i18n.lang === "vi" ? "vi-VN" : "en-GB", { maximumFractionDigits: digits }).format(value);
}

// "2025-11-10" -> "10/11/2025" in Vietnamese, unchanged in English.
function formatDay(isoDay) {
  const [year, month, day] = isoDay.split("-");
  return i18n.lang === "vi" ? `${day}/${month}/${year}` : isoDay;
}

// An event time as stored (its own offset kept): Vietnamese shows the date as dd/mm/yyyy.
function formatTime(iso) {
  if (!iso || i18n.lang !== "vi" || !/^\d{4}-\d{2}-\d{2}T/.test(iso)) return iso ?? "";
  return `${formatDay(iso.slice(0, 10))} ${iso.slice(11, 19)}`;
}
