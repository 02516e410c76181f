// Tag rule builder: edits the rule JSON in #id_definition through nested group cards and condition rows
// that read as sentences ("Number of orders in the last [30] days is at least [2]"). Every control has a
// visible label and every choice is in words; the codes stay in the JSON. No inline scripts (CSP): the
// words come translated from the json_script block #rule-builder-i18n. A rule's errors (a refused
// preview or save) are shown beside the condition and control they name, and cleared once it is fixed.
(function () {
  "use strict";
  const root = document.getElementById("rule-builder");
  const textarea = document.getElementById("id_definition");
  if (!root || !textarea) return;
  const t = JSON.parse(document.getElementById("rule-builder-i18n").textContent);
  const readonly = root.dataset.readonly === "1";
  const AMOUNT_AGGS = ["sum", "avg", "min", "max"];
  const LIST_OPS = ["in", "not_in"];
  let uid = 0;
  let errors = []; // [{path, message}] from the server, shown beside their conditions

  function parse(text) {
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  // model: {type: "group", mode: "all"|"any", negate: bool, children: []} | {type: "cond", node: {...}}
  function toModel(node) {
    if (node && typeof node === "object" && !Array.isArray(node)) {
      if ("not" in node) {
        const inner = toModel(node.not);
        if (inner.type === "group" && !inner.negate) { inner.negate = true; return inner; }
        return { type: "group", mode: "all", negate: true, children: [inner] };
      }
      for (const mode of ["all", "any"]) {
        if (Array.isArray(node[mode])) return { type: "group", mode: mode, negate: false, children: node[mode].map(toModel) };
      }
    }
    return { type: "cond", node: node || {} };
  }

  function fromModel(m) {
    if (m.type === "cond") return m.node;
    const group = {};
    group[m.mode] = m.children.map(fromModel);
    return m.negate ? { not: group } : group;
  }

  function rootModel(definition) {
    const m = toModel(definition);
    return m.type === "group" ? m : { type: "group", mode: "all", negate: false, children: [m] };
  }

  let model = rootModel(parse(textarea.value) || { all: [] });

  function sync() {
    textarea.value = JSON.stringify(fromModel(model), null, 2);
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([k, v]) {
      if (k === "text") node.textContent = v;
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    if (readonly && ["INPUT", "SELECT", "BUTTON"].includes(node.tagName)) node.disabled = true;
    return node;
  }

  function select(field, options, value) {
    const s = el("select", { class: "form-select form-select-sm", "data-field": field, id: "rb-" + (++uid) });
    options.forEach(function ([v, text]) {
      const opt = el("option", { value: v, text: text });
      if (String(v) === String(value)) opt.selected = true;
      s.appendChild(opt);
    });
    return s;
  }

  function input(field, value, extra) {
    const shown = value === undefined || value === null ? "" : value;
    return el("input", Object.assign({ class: "form-control form-control-sm", "data-field": field, id: "rb-" + (++uid), value: shown }, extra || {}));
  }

  // A control with its visible label above it (and optional words after it); errors for `errorFor` land here.
  function labelled(caption, control, errorFor, suffix) {
    const box = el("div", { class: "rule-part", "data-error-for": errorFor || control.dataset.field });
    const line = suffix ? el("div", { class: "input-group input-group-sm flex-nowrap" }, [control, el("span", { class: "input-group-text", text: suffix })]) : control;
    box.append(el("label", { class: "form-label small text-body-secondary mb-0 d-block", for: control.id, text: caption }), line);
    return box;
  }

  function defaultFor(kind) {
    if (kind === "attr") return { attr: "city", op: "=", value: "" };
    if (kind === "tag") return { tag: t.tags.length ? t.tags[0].slug : "", has: true };
    return { event: "page_view", agg: "count", window_days: 30, op: ">=", value: 1 };
  }

  function kindOf(node) {
    if ("attr" in node) return "attr";
    if ("tag" in node) return "tag";
    return "event";
  }

  function withCurrent(options, value) {
    // a code the words do not cover (an event type or field from elsewhere) stays choosable as it is
    if (value === undefined || value === "" || options.some(function (o) { return o[0] === value; })) return options;
    return options.concat([[value, String(value)]]);
  }

  function scalar(raw, numeric) {
    const trimmed = raw.trim();
    if (numeric && trimmed !== "" && !isNaN(Number(trimmed))) return Number(trimmed);
    return numeric ? trimmed : raw;
  }

  function isNumericAttr(node) { return (node.attr || "").startsWith("attributes."); }

  // a computed value (CLV, scores...) is a number; free attributes are numbers when they look like one
  function isNumberField(node) { return (t.numericFields || []).includes(node.attr); }
  function numberish(node, raw) { return isNumberField(node) || (isNumericAttr(node) && !isNaN(Number(raw.trim()))); }

  function listText(value) {
    if (Array.isArray(value)) return value.join(", ");
    return value === undefined || value === null ? "" : String(value);
  }

  function valueControls(node, kind, changed) {
    const numeric = kind === "event" || (kind === "attr" && isNumberField(node));
    const parts = [];
    const choices = kind === "attr" && (t.fieldChoices || {})[node.attr];
    if (choices && (node.op === "=" || node.op === "!=")) {
      // a value from elsewhere (or none yet) becomes the first choice; render() then syncs the JSON
      if (!choices.some(function (c) { return c[0] === node.value; })) node.value = choices[0][0];
      const pick = select("value", choices, node.value);
      pick.addEventListener("change", function () { node.value = pick.value; changed(); });
      return [labelled(t.value, pick)];
    }
    if (node.op === "is_null") {
      const empty = select("value", t.emptyChoices, String(node.value === true));
      empty.addEventListener("change", function () { node.value = empty.value === "true"; changed(); });
      return [labelled(t.empty, empty)];
    }
    if (node.op === "between") {
      const ends = Array.isArray(node.value) ? node.value : ["", ""];
      node.value = [ends[0] === undefined ? "" : ends[0], ends[1] === undefined ? "" : ends[1]];
      [0, 1].forEach(function (i) {
        const box = input("value[" + i + "]", node.value[i], { inputmode: numeric ? "decimal" : "text", style: "max-width:8rem" });
        box.addEventListener("input", function () {
          node.value[i] = scalar(box.value, numeric || numberish(node, box.value));
          changed();
        });
        parts.push(labelled(i === 0 ? t.from : t.to, box, "value[" + i + "]"));
      });
      return parts;
    }
    if (LIST_OPS.includes(node.op)) {
      const box = input("value", listText(node.value), { style: "max-width:14rem", placeholder: t.listHint, title: t.listHint });
      box.addEventListener("input", function () {
        node.value = box.value.split(/[,，]/).map(function (part) { return part.trim(); }).filter(Boolean).map(function (part) {
          return numberish(node, part) && !isNaN(Number(part)) ? Number(part) : part;
        });
        changed();
      });
      return [labelled(t.value + " (" + t.listHint + ")", box)];
    }
    const box = input("value", listText(node.value), { inputmode: numeric ? "decimal" : "text", style: "max-width:10rem" });
    box.addEventListener("input", function () {
      node.value = scalar(box.value, numeric || (box.value.trim() !== "" && numberish(node, box.value)));
      changed();
    });
    return [labelled(t.value, box)];
  }

  function eventControls(node, changed) {
    const parts = [];
    const agg = select("agg", t.aggs, node.agg);
    agg.addEventListener("change", function () {
      node.agg = agg.value;
      if (AMOUNT_AGGS.includes(node.agg)) node.field = "amount"; else delete node.field;
      if (node.agg === "days_since_last") delete node.window_days;
      changed(true);
    });
    const ev = select("event", withCurrent(t.events, node.event), node.event);
    ev.addEventListener("change", function () { node.event = ev.value; changed(); });
    parts.push(labelled(t.measure, agg), labelled(t.eventType, ev));
    if (node.agg !== "days_since_last") {
      const period = select("period", t.periods, "window_days" in node ? "window" : "all");
      period.addEventListener("change", function () {
        if (period.value === "all") delete node.window_days; else node.window_days = 30;
        changed(true);
      });
      parts.push(labelled(t.period, period, "period"));
      if ("window_days" in node) {
        const win = input("window_days", node.window_days, { type: "number", min: 1, inputmode: "numeric", style: "max-width:6rem" });
        win.addEventListener("input", function () {
          const n = Number(win.value.trim());
          node.window_days = win.value.trim() !== "" && Number.isInteger(n) ? n : win.value.trim();
          changed();
        });
        parts.push(labelled(t.inTheLast, win, "window_days", t.days));
      }
    }
    return parts;
  }

  function attrControls(node, changed) {
    const custom = isNumericAttr(node) || !t.fields.some(function (f) { return f[0] === node.attr; });
    const field = select("attr", t.fields.concat([["attributes.", t.customAttribute]]), custom ? "attributes." : node.attr);
    field.addEventListener("change", function () { node.attr = field.value; changed(true); });
    const parts = [labelled(t.attribute, field, "attr")];
    if (custom) {
      const key = input("attr-key", (node.attr || "").replace(/^attributes\./, ""), { style: "max-width:10rem" });
      key.addEventListener("input", function () { node.attr = "attributes." + key.value.trim(); changed(); });
      parts.push(labelled(t.attributeKey, key, "attr-key"));
    }
    return parts;
  }

  function tagControls(node, changed) {
    const has = select("has", t.hasChoices, String(node.has !== false));
    has.addEventListener("change", function () { node.has = has.value === "true"; changed(); });
    let options = t.tags.map(function (tag) { return [tag.slug, tag.name]; });
    options = withCurrent(options, node.tag);
    const picker = select("tag", options.length ? options : [["", t.noTags]], node.tag);
    picker.addEventListener("change", function () { node.tag = picker.value; changed(); });
    const search = input("tag-search", "", { type: "search", style: "max-width:9rem", autocomplete: "off" });
    search.addEventListener("keydown", function (event) { if (event.key === "Enter") event.preventDefault(); });
    search.addEventListener("input", function () {
      const needle = search.value.trim().toLowerCase();
      let first = null;
      Array.from(picker.options).forEach(function (opt) {
        const hit = !needle || opt.textContent.toLowerCase().includes(needle) || opt.value.toLowerCase().includes(needle);
        opt.hidden = !hit;
        if (hit && !first) first = opt;
      });
      if (first && picker.selectedOptions[0] && picker.selectedOptions[0].hidden) {
        picker.value = first.value;
        node.tag = first.value;
        sync();
      }
    });
    return [labelled(t.tagHas, has), labelled(t.tagSearch, search, "tag-search"), labelled(t.tag, picker)];
  }

  function condRow(m, parent, path) {
    const node = m.node;
    const kind = kindOf(node);
    const row = el("div", { class: "rule-condition d-flex flex-wrap gap-2 align-items-end border rounded p-2 mb-2 bg-body", "data-path": path });
    // an edit clears this condition's errors; a change of shape re-draws the builder
    function changed(redraw) {
      dropErrors(path);
      if (redraw) render(); else { sync(); showErrors(); }
    }
    const kindSelect = select("kind", t.kinds, kind);
    kindSelect.addEventListener("change", function () { m.node = defaultFor(kindSelect.value); dropErrors(path); render(); });
    const parts = [labelled(t.conditionKind, kindSelect, "kind")];
    if (kind === "event") parts.push(...eventControls(node, changed));
    else if (kind === "attr") parts.push(...attrControls(node, changed));
    else parts.push(...tagControls(node, changed));
    if (kind !== "tag") {
      const op = select("op", kind === "event" ? t.numericOps : t.attrOps, node.op);
      op.addEventListener("change", function () {
        node.op = op.value;
        if (node.op === "is_null") node.value = true;
        else if (node.op === "between") node.value = ["", ""];
        else if (LIST_OPS.includes(node.op)) node.value = [];
        else if (typeof node.value === "boolean" || Array.isArray(node.value)) node.value = "";
        changed(true);
      });
      parts.push(labelled(t.comparison, op), ...valueControls(node, kind, changed));
    }
    parts.forEach(function (p) { row.appendChild(p); });
    const remove = el("button", { type: "button", class: "btn btn-sm btn-outline-danger ms-auto", "data-action": "remove", text: t.remove });
    remove.addEventListener("click", function () { parent.children.splice(parent.children.indexOf(m), 1); errors = []; render(); });
    row.appendChild(remove);
    return row;
  }

  function join(path, key) { return path ? path + "." + key : key; }

  function groupCard(m, parent, path) {
    const card = el("div", { class: "rule-group card mb-2 " + (m.negate ? "border-danger" : "border-primary"), "data-path": path });
    const head = el("div", { class: "card-header d-flex flex-wrap gap-2 align-items-end py-1" });
    const mode = select("mode", [["all", t.all], ["any", t.any]], m.mode);
    mode.style.maxWidth = "18rem";
    mode.addEventListener("change", function () { m.mode = mode.value; errors = []; sync(); showErrors(); });
    const negateId = "rb-" + (++uid);
    const negate = el("input", { type: "checkbox", class: "form-check-input", id: negateId, "data-field": "negate" });
    negate.checked = m.negate;
    negate.addEventListener("change", function () { m.negate = negate.checked; errors = []; render(); });
    const negWrap = el("div", { class: "form-check mb-1" }, [negate, el("label", { class: "form-check-label", for: negateId, text: t.not })]);
    head.append(labelled(t.match, mode, "mode"), negWrap);
    if (parent) {
      const remove = el("button", { type: "button", class: "btn btn-sm btn-outline-danger ms-auto", "data-action": "remove", text: t.remove });
      remove.addEventListener("click", function () { parent.children.splice(parent.children.indexOf(m), 1); errors = []; render(); });
      head.appendChild(remove);
    }
    const body = el("div", { class: "card-body py-2" });
    const listPath = join(m.negate ? join(path, "not") : path, m.mode);
    m.children.forEach(function (child, i) {
      const childPath = listPath + "[" + i + "]";
      body.appendChild(child.type === "group" ? groupCard(child, m, childPath) : condRow(child, m, childPath));
    });
    const actions = el("div", { class: "d-flex gap-2" });
    const addCond = el("button", { type: "button", class: "btn btn-sm btn-outline-primary", "data-action": "add-condition", text: t.addCondition });
    addCond.addEventListener("click", function () { m.children.push({ type: "cond", node: defaultFor("event") }); errors = []; render(); });
    const addGroup = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary", "data-action": "add-group", text: t.addGroup });
    addGroup.addEventListener("click", function () {
      m.children.push({ type: "group", mode: "any", negate: false, children: [{ type: "cond", node: defaultFor("event") }] });
      errors = [];
      render();
    });
    if (!readonly) actions.append(addCond, addGroup);
    body.appendChild(actions);
    card.append(head, body);
    return card;
  }

  // --- errors beside their conditions ----------------------------------------------------------------
  function covers(prefix, path) {
    return prefix === "" || path === prefix || path.startsWith(prefix + ".") || path.startsWith(prefix + "[");
  }

  function hostFor(path) {
    let best = null;
    root.querySelectorAll("[data-path]").forEach(function (candidate) {
      const p = candidate.dataset.path;
      if (covers(p, path) && (!best || p.length > best.dataset.path.length)) best = candidate;
    });
    return best;
  }

  function slotFor(host, rest) {
    if (!rest || !host.classList.contains("rule-condition")) return null;
    const names = [rest, rest.replace(/\[\d+\]$/, "")];
    if (rest.startsWith("attr")) names.push("attr");
    if (rest.startsWith("window_days")) names.push("period");
    for (const name of names) {
      const slot = host.querySelector(':scope > [data-error-for="' + CSS.escape(name) + '"]');
      if (slot) return slot;
    }
    return null;
  }

  function showErrors() {
    root.querySelectorAll(".rule-error").forEach(function (e) { e.remove(); });
    root.querySelectorAll(".is-invalid").forEach(function (e) { e.classList.remove("is-invalid"); e.removeAttribute("aria-invalid"); });
    errors.forEach(function (error) {
      const host = hostFor(error.path);
      if (!host) return;
      const rest = error.path.slice(host.dataset.path.length).replace(/^\./, "");
      const slot = slotFor(host, rest);
      const message = el("div", { class: "invalid-feedback d-block rule-error", role: "alert", "data-error-path": error.path, text: error.message });
      if (slot) {
        const control = slot.querySelector("input, select");
        if (control) { control.classList.add("is-invalid"); control.setAttribute("aria-invalid", "true"); }
        slot.appendChild(message);
      } else if (host.classList.contains("rule-condition")) {
        message.classList.add("w-100");
        host.appendChild(message);
      } else {
        host.querySelector(".card-header").appendChild(message);
      }
    });
    if (!errors.length) {
      document.querySelectorAll("[data-rule-errors]").forEach(function (banner) { banner.remove(); });
    }
  }

  function dropErrors(path) {
    errors = errors.filter(function (error) { return !covers(path, error.path); });
  }

  function showServerErrors(id) {
    const data = document.getElementById(id);
    errors = data ? JSON.parse(data.textContent) : [];
    showErrors();
  }

  function render() {
    root.replaceChildren(groupCard(model, null, ""));
    sync();
    showErrors();
  }

  // A refused preview (422: the rule has errors; 403: personal data) is swapped in like a success so the
  // marketer sees why; its errors then move beside their conditions, and a good preview clears them.
  document.addEventListener("htmx:beforeSwap", function (event) {
    const target = event.detail.target;
    const status = event.detail.xhr.status;
    if (target && target.id === "preview-panel" && (status === 422 || status === 403)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "preview-panel") return;
    const saved = document.getElementById("rule-errors");
    if (saved) saved.remove();
    showServerErrors("preview-errors-data");
  });

  // JSON view for experts: edits re-draw the builder when they parse.
  const toggle = document.getElementById("toggle-json");
  const jsonView = document.getElementById("json-view");
  const problem = document.getElementById("json-problem");
  if (toggle && jsonView) {
    toggle.addEventListener("click", function () {
      jsonView.hidden = !jsonView.hidden;
      toggle.setAttribute("aria-expanded", String(!jsonView.hidden));
    });
  }
  textarea.addEventListener("input", function () {
    const parsed = parse(textarea.value);
    if (problem) { problem.hidden = parsed !== null; problem.textContent = parsed === null ? t.badJson : ""; }
    if (parsed === null) return;
    model = rootModel(parsed);
    errors = [];
    root.replaceChildren(groupCard(model, null, ""));
    showErrors();
  });

  // Preview: each request carries an id so "Cancel preview" can stop it on the server too.
  let previewId = "";
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "preview-button") {
      previewId = Math.random().toString(36).slice(2) + Date.now().toString(36);
      event.detail.parameters.preview_id = previewId;
    }
  });
  const cancel = document.getElementById("preview-cancel");
  if (cancel) {
    cancel.addEventListener("click", function () {
      const button = document.getElementById("preview-button");
      if (button && window.htmx) window.htmx.trigger(button, "htmx:abort");
      if (!previewId) return;
      const token = document.querySelector("meta[name=csrf-token]");
      fetch(cancel.dataset.cancelUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": token ? token.content : "" },
        body: JSON.stringify({ preview_id: previewId }),
        credentials: "same-origin",
      });
    });
  }

  // Release slider and its number box move together.
  const range = document.getElementById("rollout-range");
  const number = document.getElementById("id_rollout_percent");
  if (range && number) {
    range.addEventListener("input", function () { number.value = range.value; });
    number.addEventListener("input", function () { range.value = number.value; });
  }

  // a refused save comes back with its errors: they are placed as the builder is first drawn
  const saved = document.getElementById("rule-errors-data");
  errors = saved ? JSON.parse(saved.textContent) : [];
  render();
})();
