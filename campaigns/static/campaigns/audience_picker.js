// Campaign audience: a searchable list of tags, by name, beside each "tags to include / exclude" box.
// Ticking a tag writes its slug into the box (and so refreshes the live size); typing in the box ticks.
(function () {
  "use strict";
  const data = document.getElementById("audience-tags");
  if (!data) return;
  const tags = JSON.parse(data.textContent);

  function slugsOf(input) {
    return input.value.split(/[,，]/).map(function (s) { return s.trim().toLowerCase(); }).filter(Boolean);
  }

  document.querySelectorAll(".audience-picker").forEach(function (picker, index) {
    const input = document.getElementById(picker.dataset.pickerFor);
    if (!input) return;
    const searchId = "audience-search-" + index;
    const label = document.createElement("label");
    label.className = "form-label small mb-0";
    label.htmlFor = searchId;
    label.textContent = picker.dataset.searchLabel;
    const search = document.createElement("input");
    search.type = "search";
    search.id = searchId;
    search.className = "form-control form-control-sm mb-1";
    search.autocomplete = "off";
    const list = document.createElement("div");
    list.className = "border rounded p-2 overflow-auto";
    list.style.maxHeight = "10rem";
    const none = document.createElement("div");
    none.className = "small text-body-secondary";
    none.textContent = picker.dataset.noMatch;
    none.hidden = true;
    const boxes = tags.map(function (tag, i) {
      const id = searchId + "-" + i;
      const wrap = document.createElement("div");
      wrap.className = "form-check";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.className = "form-check-input";
      box.id = id;
      box.value = tag.slug;
      const text = document.createElement("label");
      text.className = "form-check-label";
      text.htmlFor = id;
      text.textContent = tag.name;
      wrap.append(box, text);
      list.appendChild(wrap);
      box.addEventListener("change", function () {
        const chosen = slugsOf(input).filter(function (s) { return s !== tag.slug; });
        if (box.checked) chosen.push(tag.slug);
        input.value = chosen.join(", ");
        input.dispatchEvent(new Event("input", { bubbles: true }));
      });
      return { wrap: wrap, box: box, tag: tag };
    });
    list.appendChild(none);
    function tick() {
      const chosen = slugsOf(input);
      boxes.forEach(function (b) { b.box.checked = chosen.includes(b.tag.slug.toLowerCase()); });
    }
    input.addEventListener("input", tick);
    search.addEventListener("keydown", function (event) { if (event.key === "Enter") event.preventDefault(); });
    search.addEventListener("input", function () {
      const needle = search.value.trim().toLowerCase();
      let shown = 0;
      boxes.forEach(function (b) {
        const hit = !needle || b.tag.name.toLowerCase().includes(needle) || b.tag.slug.includes(needle);
        b.wrap.hidden = !hit;
        shown += hit ? 1 : 0;
      });
      none.hidden = shown > 0;
    });
    picker.append(label, search, list);
    tick();
  });
})();
