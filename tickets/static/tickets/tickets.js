// Request pages: canned replies, select-all in the queue, drag-and-drop attachments (no inline scripts).
(function () {
  "use strict";
  // Canned reply: choosing one fills the reply box.
  document.addEventListener("change", function (event) {
    const picker = event.target.closest("[data-canned-target]");
    if (!picker || !picker.value) return;
    const box = document.querySelector(picker.getAttribute("data-canned-target"));
    if (box) { box.value = box.value ? box.value + "\n" + picker.value : picker.value; box.focus(); }
    picker.value = "";
  });
  // Queue: the header checkbox ticks every row.
  document.addEventListener("change", function (event) {
    const all = event.target.closest("[data-select-all]");
    if (!all) return;
    document.querySelectorAll("input[name=keys][form=bulk-form]").forEach(function (box) { box.checked = all.checked; });
  });
  // Attachments: drop files anywhere on the drop zone.
  function listFiles(zone, input) {
    const list = zone.querySelector("[data-dropzone-list]");
    if (!list) return;
    list.textContent = "";
    Array.from(input.files).forEach(function (file) {
      const item = document.createElement("li");
      item.textContent = file.name + " (" + Math.ceil(file.size / 1024) + " KB)";
      list.appendChild(item);
    });
  }
  document.querySelectorAll("[data-dropzone-area]").forEach(function (zone) {
    const input = zone.querySelector("input[type=file]");
    if (!input) return;
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("border-primary"); });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("border-primary"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        listFiles(zone, input);
      }
    });
    input.addEventListener("change", function () { listFiles(zone, input); });
  });
  // Saved views and bulk actions carry the queue's current filters: htmx changes them without a reload,
  // so the query is read from the filter form when such a form is sent, not from the page as it loaded.
  const filters = document.getElementById("queue-filters");
  if (filters) {
    document.addEventListener("submit", function (event) {
      const form = event.target;
      if (form === filters || !form.querySelector) return;
      const field = form.querySelector("input[type=hidden][name=query]");
      if (!field) return;
      const params = new URLSearchParams();
      new FormData(filters).forEach(function (value, key) { if (value !== "") params.append(key, value); });
      field.value = params.toString();
    }, true);
  }
})();
