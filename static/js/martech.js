// MarTech Hub page behaviour shared by every page (no inline scripts: CSP allows only our own files).
(function () {
  "use strict";
  // "/" focuses the page's search box, unless the person is typing somewhere.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
    const box = document.querySelector("[data-page-search]") || document.querySelector("#global-search");
    if (box) { event.preventDefault(); box.focus(); }
  });
  // Dates: show local relative time on hover for every <time datetime=...>.
  function relative(iso) {
    const then = new Date(iso); const seconds = Math.round((then - new Date()) / 1000);
    const lang = document.documentElement.lang || "en";
    const rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
    const units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size) return rtf.format(Math.round(seconds / size), unit);
    }
    return rtf.format(seconds, "second");
  }
  function decorate(root) {
    root.querySelectorAll("time[datetime]:not([title])").forEach(function (el) {
      el.title = relative(el.getAttribute("datetime"));
    });
  }
  document.addEventListener("DOMContentLoaded", function () { decorate(document); });
  document.addEventListener("htmx:afterSwap", function (event) { decorate(event.target); });
  // Send the CSRF token with every htmx request.
  document.addEventListener("htmx:configRequest", function (event) {
    const token = document.querySelector("meta[name=csrf-token]");
    if (token) event.detail.headers["X-CSRFToken"] = token.content;
  });
  // A refused edit (409: someone saved first; 428: the version was missing) answers with the form filled
  // from the current values and a message: swap it in like a success so the person sees it.
  document.addEventListener("htmx:beforeSwap", function (event) {
    const status = event.detail.xhr.status;
    if (status === 409 || status === 428) { event.detail.shouldSwap = true; event.detail.isError = false; }
  });
  // Submit-on-change for selects marked data-autosubmit (language / time zone pickers, filters).
  document.addEventListener("change", function (event) {
    const el = event.target.closest("[data-autosubmit]");
    if (el && el.form) el.form.requestSubmit ? el.form.requestSubmit() : el.form.submit();
  });
})();
