// Tag rule builder: edits the rule JSON in #id_definition through nested group cards and condition rows.
// No inline scripts (CSP); labels come translated from the json_script block #rule-builder-i18n.
(function () {
  "use strict";
  const root = document.getElementById("rule-builder");
  const textarea = document.getElementById("id_definition");
  if (!root || !textarea) return;
  const t = JSON.parse(document.getElementById("rule-builder-i18n").textContent);
  const readonly = root.dataset.readonly === "1";
  const knownTags = root.dataset.knownTags ? root.dataset.knownTags.split(",").filter(Boolean) : [];
  const EVENT_TYPES = ["page_view", "order", "coupon_redeemed"];
  const AMOUNT_AGGS = ["sum", "avg", "min", "max"];

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

  let model = toModel(parse(textarea.value) || { all: [] });
  if (model.type !== "group") model = { type: "group", mode: "all", negate: false, children: [model] };

  function sync() {
    textarea.value = JSON.stringify(fromModel(model), null, 2);
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([k, v]) {
      if (k === "text") node.textContent = v;
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    if (readonly && ["INPUT", "SELECT", "BUTTON"].includes(node.tagName)) node.disabled = true;
    return node;
  }

  function select(field, label, options, value) {
    const s = el("select", { class: "form-select form-select-sm", "data-field": field, "aria-label": label });
    options.forEach(function (o) {
      const [v, text] = Array.isArray(o) ? o : [o, o];
      const opt = el("option", { value: v, text: text });
      if (String(v) === String(value)) opt.selected = true;
      s.appendChild(opt);
    });
    return s;
  }

  function input(field, label, value, extra) {
    return el("input", Object.assign({ class: "form-control form-control-sm", "data-field": field, "aria-label": label, value: value === undefined || value === null ? "" : value }, extra || {}));
  }

  function defaultFor(kind) {
    if (kind === "attr") return { attr: "city", op: "=", value: "" };
    if (kind === "tag") return { tag: knownTags[0] || "", has: true };
    return { event: "page_view", agg: "count", window_days: 30, op: ">=", value: 1 };
  }

  function kindOf(node) {
    if ("attr" in node) return "attr";
    if ("tag" in node) return "tag";
    return "event";
  }

  function valueText(value) {
    if (Array.isArray(value)) return value.join(",");
    return value === undefined || value === null ? "" : String(value);
  }

  function numberOrText(raw, numeric) {
    const trimmed = raw.trim();
    if (numeric && trimmed !== "" && !isNaN(Number(trimmed))) return Number(trimmed);
    return numeric ? (trimmed === "" ? 0 : trimmed) : raw;
  }

  function readValue(node, raw) {
    const numeric = "event" in node || (node.attr || "").startsWith("attributes.") && raw.trim() !== "" && !isNaN(Number(raw.trim()));
    if (node.op === "is_null") return raw === "true";
    if (["in", "not_in", "between"].includes(node.op)) return raw.split(",").map(function (part) { return numberOrText(part, numeric); });
    return numberOrText(raw, numeric);
  }

  function condRow(m, parent) {
    const node = m.node;
    const kind = kindOf(node);
    const row = el("div", { class: "rule-condition d-flex flex-wrap gap-2 align-items-center border rounded p-2 mb-2 bg-body" });
    const kindSelect = select("kind", t.conditionKind, [["event", t.event], ["attr", t.attr], ["tag", t.tag]], kind);
    kindSelect.addEventListener("change", function () { m.node = defaultFor(kindSelect.value); render(); });
    row.appendChild(kindSelect);
    const parts = [];
    if (kind === "event") {
      const ev = input("event", t.eventType, node.event, { list: "rule-event-types", style: "max-width:10rem" });
      ev.addEventListener("input", function () { node.event = ev.value.trim(); sync(); });
      const agg = select("agg", t.aggregate, t.aggs, node.agg);
      agg.addEventListener("change", function () {
        node.agg = agg.value;
        if (AMOUNT_AGGS.includes(node.agg)) node.field = "amount"; else delete node.field;
        if (node.agg === "days_since_last") delete node.window_days;
        render();
      });
      parts.push(ev, agg);
      if (AMOUNT_AGGS.includes(node.agg)) parts.push(select("field", t.field, ["amount"], "amount"));
      if (node.agg !== "days_since_last") {
        const win = input("window_days", t.window, node.window_days, { type: "number", min: 1, style: "max-width:7rem", placeholder: "∞" });
        win.addEventListener("input", function () {
          if (win.value.trim() === "") delete node.window_days; else node.window_days = parseInt(win.value, 10);
          sync();
        });
        parts.push(win);
      }
      parts.push(opSelect(node, t.numericOps));
    } else if (kind === "attr") {
      const attr = input("attr", t.attribute, node.attr, { list: "rule-attr-fields", style: "max-width:12rem" });
      attr.addEventListener("input", function () { node.attr = attr.value.trim(); sync(); });
      parts.push(attr, opSelect(node, t.attrOps));
    } else {
      const tag = select("tag", t.tag, knownTags.length ? knownTags : [node.tag || ""], node.tag);
      tag.addEventListener("change", function () { node.tag = tag.value; sync(); });
      const has = select("has", t.has, [["true", t.has], ["false", t.hasNot]], String(node.has !== false));
      has.addEventListener("change", function () { node.has = has.value === "true"; sync(); });
      parts.push(has, tag);
    }
    if (kind !== "tag") {
      let valueInput;
      if (node.op === "is_null") {
        valueInput = select("value", t.value, ["true", "false"], String(node.value === true));
        valueInput.addEventListener("change", function () { node.value = valueInput.value === "true"; sync(); });
      } else {
        valueInput = input("value", t.value, valueText(node.value), { style: "max-width:10rem" });
        valueInput.addEventListener("input", function () { node.value = readValue(node, valueInput.value); sync(); });
      }
      parts.push(valueInput);
    }
    parts.forEach(function (p) { row.appendChild(p); });
    const remove = el("button", { type: "button", class: "btn btn-sm btn-outline-danger ms-auto", "data-action": "remove", text: t.remove });
    remove.addEventListener("click", function () { parent.children.splice(parent.children.indexOf(m), 1); render(); });
    row.appendChild(remove);
    return row;
  }

  function opSelect(node, ops) {
    const s = select("op", t.operator, ops, node.op);
    s.addEventListener("change", function () {
      node.op = s.value;
      if (node.op === "is_null") node.value = true;
      render();
    });
    return s;
  }

  function groupCard(m, parent) {
    const card = el("div", { class: "rule-group card mb-2 " + (m.negate ? "border-danger" : "border-primary") });
    const head = el("div", { class: "card-header d-flex flex-wrap gap-2 align-items-center py-1" });
    const mode = select("mode", t.groupMode, [["all", t.all], ["any", t.any]], m.mode);
    mode.style.maxWidth = "12rem";
    mode.addEventListener("change", function () { m.mode = mode.value; sync(); });
    const negateId = "neg-" + Math.random().toString(36).slice(2);
    const negate = el("input", { type: "checkbox", class: "form-check-input", id: negateId, "data-field": "negate" });
    negate.checked = m.negate;
    negate.addEventListener("change", function () { m.negate = negate.checked; render(); });
    const negWrap = el("div", { class: "form-check mb-0" }, [negate, el("label", { class: "form-check-label", for: negateId, text: t.not })]);
    head.append(mode, negWrap);
    if (parent) {
      const remove = el("button", { type: "button", class: "btn btn-sm btn-outline-danger ms-auto", "data-action": "remove", text: t.remove });
      remove.addEventListener("click", function () { parent.children.splice(parent.children.indexOf(m), 1); render(); });
      head.appendChild(remove);
    }
    const body = el("div", { class: "card-body py-2" });
    m.children.forEach(function (child) { body.appendChild(child.type === "group" ? groupCard(child, m) : condRow(child, m)); });
    const actions = el("div", { class: "d-flex gap-2" });
    const addCond = el("button", { type: "button", class: "btn btn-sm btn-outline-primary", "data-action": "add-condition", text: t.addCondition });
    addCond.addEventListener("click", function () { m.children.push({ type: "cond", node: defaultFor("event") }); render(); });
    const addGroup = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary", "data-action": "add-group", text: t.addGroup });
    addGroup.addEventListener("click", function () {
      m.children.push({ type: "group", mode: "any", negate: false, children: [{ type: "cond", node: defaultFor("event") }] });
      render();
    });
    if (!readonly) actions.append(addCond, addGroup);
    body.appendChild(actions);
    card.append(head, body);
    return card;
  }

  function datalist(id, values) {
    const list = el("datalist", { id: id });
    values.forEach(function (v) { list.appendChild(el("option", { value: v })); });
    return list;
  }

  function render() {
    root.replaceChildren(
      groupCard(model, null),
      datalist("rule-event-types", EVENT_TYPES),
      datalist("rule-attr-fields", t.fields.concat(["attributes."]))
    );
    sync();
  }

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
    model = toModel(parsed);
    if (model.type !== "group") model = { type: "group", mode: "all", negate: false, children: [model] };
    root.replaceChildren(groupCard(model, null), datalist("rule-event-types", EVENT_TYPES), datalist("rule-attr-fields", t.fields.concat(["attributes."])));
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

  render();
})();
