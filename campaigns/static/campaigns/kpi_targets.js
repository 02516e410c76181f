// KPI targets on the campaign form: rows of (metric, target); add and remove rows, and show the unit
// (%, ×) the chosen metric is typed in. The rows are plain form fields: the server validates them.
(function () {
  "use strict";
  const box = document.getElementById("kpi-targets");
  if (!box) return;
  const rows = document.getElementById("kpi-rows");
  const template = document.getElementById("kpi-row-template");

  // a metric typed without a unit shows no empty unit box
  box.querySelectorAll("[data-unit-shown]").forEach(function (shown) { shown.hidden = !shown.textContent; });

  box.addEventListener("click", function (event) {
    const button = event.target.closest("[data-action]");
    if (!button) return;
    if (button.dataset.action === "add-kpi") {
      rows.appendChild(template.content.cloneNode(true));
      rows.lastElementChild.querySelector("[data-unit-shown]").hidden = true;
      const added = rows.lastElementChild.querySelector("select");
      if (added) added.focus();
    } else if (button.dataset.action === "remove-kpi") {
      button.closest(".kpi-row").remove();
    }
  });

  box.addEventListener("change", function (event) {
    const metric = event.target.closest("select[data-field=metric]");
    if (!metric) return;
    const row = metric.closest(".kpi-row");
    const option = metric.selectedOptions[0];
    const shown = row.querySelector("[data-unit-shown]");
    shown.textContent = option ? option.dataset.unit || "" : "";
    shown.hidden = !shown.textContent;
    row.querySelectorAll(".is-invalid").forEach(function (el) { el.classList.remove("is-invalid"); });
    const error = row.querySelector(".kpi-error");
    if (error) error.remove();
  });
})();
