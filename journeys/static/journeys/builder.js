// Journey builder: edits the definition {trigger, entry, steps, goal} through cards with dropdowns, a
// vertical flow of steps whose branches stand side by side. Each step shows its live counts (by step id,
// the path the engine uses: "0", "1.then.0"). Branch and entry conditions are edited by the tag rule
// builder (crm_tags/rule_builder.js): its one panel moves into the card being edited and its textarea
// #id_definition carries the rule. Errors from a refused save are shown beside the step their path names.
// No inline scripts (CSP): data and words come from json_script blocks.
(function () {
  "use strict";
  const root = document.getElementById("journey-builder");
  const form = document.getElementById("journey-form");
  if (!root) return;
  const data = function (id) { const node = document.getElementById(id); return node ? JSON.parse(node.textContent) : null; };
  const t = data("journey-builder-i18n");
  const w = t.words;
  const def = data("journey-definition-data") || {};
  const stats = data("journey-stats-data") || {};
  const errors = data("journey-errors-data") || [];
  def.trigger = def.trigger || {};
  def.entry = def.entry || {};
  def.steps = Array.isArray(def.steps) ? def.steps : [];
  const panel = document.getElementById("condition-panel");
  const panelHome = panel ? panel.parentNode : null;
  const ruleText = document.getElementById("id_definition");
  const DEFAULT_RULE = { all: [{ event: "order", agg: "count", window_days: 30, op: ">=", value: 1 }] };
  let target = null; // {obj, key}: the rule tree the condition panel edits
  let slot = null;
  let uid = 0;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([k, v]) {
      if (k === "text") node.textContent = v;
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }

  function labelled(caption, control, field) {
    control.id = control.id || "jb-" + (++uid);
    if (field) control.dataset.field = field;
    return el("div", { class: "me-2 mb-2" }, [el("label", { class: "form-label small mb-0 d-block", for: control.id, text: caption }), control]);
  }

  function select(options, value, onChange, blank) {
    const s = el("select", { class: "form-select form-select-sm" });
    if (blank || !options.length) s.appendChild(el("option", { value: "", text: options.length ? "—" : w.noChoices }));
    options.forEach(function ([v, text]) {
      const opt = el("option", { value: v, text: text });
      if (String(v) === String(value)) opt.selected = true;
      s.appendChild(opt);
    });
    s.addEventListener("change", function () { onChange(s.value); });
    return s;
  }

  function number(value, onChange, min, max) {
    const box = el("input", { type: "number", class: "form-control form-control-sm", style: "max-width:7rem", min: min, max: max, value: value === undefined || value === null ? "" : value });
    box.addEventListener("input", function () { onChange(box.value === "" ? undefined : Number(box.value)); });
    return box;
  }

  function text(value, onChange) {
    const box = el("input", { type: "text", class: "form-control form-control-sm", value: value || "" });
    box.addEventListener("input", function () { onChange(box.value); });
    return box;
  }

  function checkbox(caption, checked, onChange) {
    const box = el("input", { type: "checkbox", class: "form-check-input", id: "jb-" + (++uid) });
    box.checked = !!checked;
    box.addEventListener("change", function () { onChange(box.checked); });
    return el("div", { class: "form-check mb-2" }, [box, el("label", { class: "form-check-label", for: box.id, text: caption })]);
  }

  function card(title, path, body) {
    return el("div", { class: "card journey-card mb-2", "data-path": path }, [
      el("div", { class: "card-header py-1 fw-semibold", text: title }),
      el("div", { class: "card-body py-2" }, body.concat([el("div", { class: "journey-errors", "data-errors-for": path })])),
    ]);
  }

  function numeric(v) { return v === undefined || v === null || v === "" ? undefined : Number(v); }

  // --- trigger, entry, goal ---
  function triggerCard() {
    const tr = def.trigger;
    const body = [];
    const row = el("div", { class: "d-flex flex-wrap align-items-end" });
    const kind = tr.kind || "tag_entered";
    const editable = ["tag_entered", "tag_exited", "event"];
    const kinds = editable.includes(kind) ? t.triggerKinds.slice(0, 3) : t.triggerKinds;
    row.appendChild(labelled(w.customer, select(kinds, kind, function (v) {
      def.trigger = v === "event" ? { kind: v, event: (t.events[0] || [""])[0] } : { kind: v, tag: tr.tag || (t.tags[0] || [""])[0] };
      render();
    }), "trigger-kind"));
    if (kind === "tag_entered" || kind === "tag_exited") {
      row.appendChild(labelled(w.tag, select(t.tags, tr.tag, function (v) { tr.tag = v; }, !tr.tag), "trigger-tag"));
    } else if (kind === "event") {
      row.appendChild(labelled(w.event, select(t.events, tr.event, function (v) { tr.event = v; }), "trigger-event"));
    }
    body.push(row);
    if (kind === "tag_entered") body.push(checkbox(w.exitOnLeave, tr.exit_on_leave, function (v) { if (v) tr.exit_on_leave = true; else delete tr.exit_on_leave; }));
    if (!editable.includes(kind)) body.push(el("p", { class: "small text-body-secondary mb-0", text: w.apiOnly }));
    return card(w.trigger, "trigger", body);
  }

  function entryCard() {
    const en = def.entry;
    const row = el("div", { class: "d-flex flex-wrap align-items-end" });
    row.appendChild(labelled(w.reentry, select(t.reentry, en.reentry || "never", function (v) {
      en.reentry = v;
      if (v === "after_days") en.reentry_days = en.reentry_days || 30; else delete en.reentry_days;
      render();
    }), "reentry"));
    if (en.reentry === "after_days") row.appendChild(labelled(w.reentryDays, number(en.reentry_days, function (v) { en.reentry_days = v; }, 1), "reentry_days"));
    row.appendChild(labelled(w.percent, number(en.percent, function (v) { if (v === undefined) delete en.percent; else en.percent = v; }, 0, 100), "percent"));
    row.appendChild(labelled(w.holdout, number(en.holdout_percent, function (v) { if (v === undefined) delete en.holdout_percent; else en.holdout_percent = v; }, 0, 90), "holdout_percent"));
    const body = [row, checkbox(w.entryCondition, !!en.condition, function (v) {
      if (v) { en.condition = JSON.parse(JSON.stringify(DEFAULT_RULE)); target = { obj: en, key: "condition" }; } else { delete en.condition; if (target && target.obj === en) target = null; }
      render();
    })];
    if (en.condition) body.push(conditionControls(en, "condition"));
    return card(w.entry, "entry", body);
  }

  function goalCard() {
    const goal = def.goal;
    const body = [checkbox(w.goalOn, !!goal, function (v) { def.goal = v ? { event: (t.events[0] || [""])[0], within_days: 14 } : null; render(); })];
    if (goal) {
      const row = el("div", { class: "d-flex flex-wrap align-items-end" });
      row.appendChild(labelled(w.event, select(t.events, goal.event, function (v) { goal.event = v; }), "goal-event"));
      row.appendChild(labelled(w.withinDays, number(goal.within_days, function (v) { goal.within_days = v; }, 1), "within_days"));
      body.push(row);
    }
    return card(w.goal, "goal", body);
  }

  // --- conditions (the rule builder's panel) ---
  function conditionControls(obj, key) {
    const host = el("div", { class: "journey-condition" });
    const editing = target && target.obj === obj && target.key === key;
    const button = el("button", { type: "button", class: "btn btn-sm btn-outline-primary mb-2", "data-action": "edit-condition", text: w.editCondition });
    button.addEventListener("click", function () { target = { obj: obj, key: key }; render(); });
    host.appendChild(el("div", { class: "small mb-1", text: obj[key] ? w.conditionSet : w.conditionNone }));
    if (!editing) host.appendChild(button);
    const place = el("div", { class: "journey-condition-slot" });
    host.appendChild(place);
    if (editing) slot = place;
    return host;
  }

  function placePanel() {
    if (!panel) return;
    if (slot && target) {
      slot.appendChild(panel);
      panel.hidden = false;
      ruleText.value = JSON.stringify(target.obj[target.key] || { all: [] });
      ruleText.dispatchEvent(new Event("input"));
    } else {
      panelHome.appendChild(panel);
      panel.hidden = true;
    }
  }

  if (panel) {
    ["input", "change", "click"].forEach(function (type) {
      panel.addEventListener(type, function () {
        if (!target) return;
        try { target.obj[target.key] = JSON.parse(ruleText.value); } catch (e) { /* the builder keeps the last valid rule */ }
      });
    });
  }

  // --- steps ---
  function kindOf(step) {
    if (!step || typeof step !== "object") return "other";
    if ("wait" in step) return step.wait && (step.wait.until || step.wait.until_event) ? "other" : "wait";
    if ("branch" in step) return "branch";
    if ("exit" in step) return "exit";
    if ("action" in step && t.stepKinds.some(function (k) { return k[0] === step.action; })) return step.action;
    return "other";
  }

  function newStep(kind) {
    const first = function (list) { return list.length ? list[0][0] : null; };
    switch (kind) {
      case "wait": return { wait: { days: 1 } };
      case "branch": return { branch: { if: JSON.parse(JSON.stringify(DEFAULT_RULE)), then: [], else: [] } };
      case "email": return { action: "email", template: first(t.emailTemplates) };
      case "webhook": return { action: "webhook", destination: first(t.destinations), template: {} };
      case "notify": return { action: "notify", team: first(t.teams) };
      case "ticket": return { action: "ticket", title: "" };
      case "tag_add": case "tag_remove": return { action: kind, tag: first(t.manualTags) };
      default: return { exit: true };
    }
  }

  function kindLabel(kind) {
    const found = t.stepKinds.find(function (k) { return k[0] === kind; });
    return found ? found[1] : "";
  }

  function counts(id) {
    const row = stats[id];
    const box = el("div", { class: "journey-counts small text-body-secondary", "data-step": id });
    ["passed", "acted", "skipped", "failed"].forEach(function (outcome) {
      box.appendChild(el("span", { class: "me-2" }, [w[outcome] + " ", el("strong", { "data-outcome": outcome, text: String(row ? row[outcome] || 0 : 0) })]));
    });
    return box;
  }

  function payloadEditor(step) {
    const box = el("div", { class: "journey-payload" });
    const template = step.template && typeof step.template === "object" ? step.template : (step.template = {});
    Object.keys(template).forEach(function (key) {
      const row = el("div", { class: "d-flex flex-wrap align-items-end" });
      let current = key;
      row.appendChild(labelled(w.payloadKey, text(key, function (v) {
        const value = template[current]; delete template[current]; current = v; template[current] = value;
      })));
      row.appendChild(labelled(w.payloadValue, text(String(template[key]), function (v) { template[current] = v; })));
      const remove = el("button", { type: "button", class: "btn btn-sm btn-link text-danger mb-2", text: w.remove });
      remove.addEventListener("click", function () { delete template[current]; render(); });
      row.appendChild(remove);
      box.appendChild(row);
    });
    const add = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary mb-2", text: w.addPayload });
    add.addEventListener("click", function () { let n = 1; while (("field" + n) in template) n++; template["field" + n] = ""; render(); });
    box.appendChild(add);
    return box;
  }

  function stepBody(step, kind) {
    const row = el("div", { class: "d-flex flex-wrap align-items-end" });
    if (kind === "wait") {
      row.appendChild(labelled(w.days, number(step.wait.days, function (v) { if (v === undefined) delete step.wait.days; else step.wait.days = v; }, 0), "days"));
      row.appendChild(labelled(w.hours, number(step.wait.hours, function (v) { if (v === undefined) delete step.wait.hours; else step.wait.hours = v; }, 0), "hours"));
    } else if (kind === "email") {
      row.appendChild(labelled(w.template, select(t.emailTemplates, step.template, function (v) { step.template = numeric(v); }, step.template == null), "template"));
    } else if (kind === "webhook") {
      row.appendChild(labelled(w.destination, select(t.destinations, step.destination, function (v) { step.destination = numeric(v); }, step.destination == null), "destination"));
      return [row, payloadEditor(step)];
    } else if (kind === "notify") {
      row.appendChild(labelled(w.team, select(t.teams, step.team, function (v) { step.team = v; delete step.user; }, !step.team), "team"));
      row.appendChild(labelled(w.message, text(step.message, function (v) { if (v) step.message = v; else delete step.message; }), "message"));
    } else if (kind === "ticket") {
      row.appendChild(labelled(w.title, text(step.title, function (v) { step.title = v; }), "title"));
    } else if (kind === "tag_add" || kind === "tag_remove") {
      row.appendChild(labelled(w.tag, select(t.manualTags, step.tag, function (v) { step.tag = v; }, !step.tag), "tag"));
    } else if (kind === "exit") {
      row.appendChild(el("p", { class: "small mb-0", text: w.exit }));
    } else {
      row.appendChild(el("p", { class: "small mb-1", text: w.other }));
      row.appendChild(el("code", { class: "small d-block text-break", text: JSON.stringify(step) }));
    }
    return [row];
  }

  function stepCard(step, list, index, path, id) {
    const kind = kindOf(step);
    const node = el("div", { class: "card journey-step mb-0", "data-path": path, "data-step-id": id, "data-kind": kind });
    const remove = el("button", { type: "button", class: "btn btn-sm btn-link text-danger p-0 ms-auto", "data-action": "remove-step", text: w.remove });
    remove.addEventListener("click", function () { list.splice(index, 1); render(); });
    node.appendChild(el("div", { class: "card-header py-1 d-flex align-items-center gap-2" }, [el("span", { class: "fw-semibold", text: kindLabel(kind) || w.other }), el("span", { class: "badge text-bg-light", text: id }), remove]));
    const body = el("div", { class: "card-body py-2" });
    if (kind === "branch") {
      body.appendChild(conditionControls(step.branch, "if"));
      const columns = el("div", { class: "row g-2 journey-branches" });
      [["then", w.then], ["else", w.else]].forEach(function ([key, caption]) {
        step.branch[key] = Array.isArray(step.branch[key]) ? step.branch[key] : [];
        columns.appendChild(el("div", { class: "col-md-6 journey-arm", "data-arm": key }, [
          el("div", { class: "small fw-semibold mb-1", text: caption }),
          stepList(step.branch[key], path + ".branch." + key, id + "." + key + "."),
        ]));
      });
      body.appendChild(columns);
    } else {
      stepBody(step, kind).forEach(function (part) { body.appendChild(part); });
    }
    body.appendChild(el("div", { class: "journey-errors", "data-errors-for": path }));
    body.appendChild(counts(id));
    node.appendChild(body);
    return node;
  }

  function stepList(list, path, prefix) {
    const flow = el("div", { class: "journey-flow", "data-list": path });
    list.forEach(function (step, i) {
      const id = step && typeof step === "object" && typeof step.id === "string" ? step.id : prefix + i;
      flow.appendChild(stepCard(step, list, i, path + "[" + i + "]", id));
      flow.appendChild(el("div", { class: "journey-connector", "aria-hidden": "true" }));
    });
    const add = el("div", { class: "journey-add d-flex flex-wrap align-items-end" });
    let chosen = t.stepKinds[0][0];
    add.appendChild(labelled(w.addStepHere, select(t.stepKinds, chosen, function (v) { chosen = v; }), "add-kind"));
    const button = el("button", { type: "button", class: "btn btn-sm btn-outline-primary mb-2", "data-action": "add-step", text: w.addStep });
    button.addEventListener("click", function () { list.push(newStep(chosen)); render(); });
    add.appendChild(button);
    flow.appendChild(add);
    return flow;
  }

  // --- errors by path ---
  function showErrors() {
    const hosts = Array.from(root.querySelectorAll("[data-errors-for]"));
    const unplaced = [];
    errors.forEach(function (error) {
      let best = null;
      hosts.forEach(function (host) {
        const p = host.dataset.errorsFor;
        const fits = error.path === p || error.path.startsWith(p + ".") || error.path.startsWith(p + "[");
        if (fits && (!best || p.length > best.dataset.errorsFor.length)) best = host;
      });
      if (!best) { unplaced.push(error); return; }
      const rest = error.path.slice(best.dataset.errorsFor.length).replace(/^\./, "");
      best.appendChild(el("div", { class: "journey-error text-danger small", role: "alert", text: (rest ? rest + ": " : "") + error.message }));
      const host = best.closest("[data-path]");
      if (host) host.classList.add("border-danger");
    });
    const banner = document.getElementById("journey-unplaced-errors");
    if (banner) {
      banner.replaceChildren.apply(banner, unplaced.map(function (e) { return el("div", { text: (e.path || "") + ": " + e.message }); }));
      banner.hidden = !unplaced.length;
    }
  }

  function render() {
    slot = null;
    if (panel) panelHome.appendChild(panel);
    root.replaceChildren(
      triggerCard(),
      entryCard(),
      el("h2", { class: "h6 mt-3", text: w.steps }),
      stepList(def.steps, "steps", ""),
      el("div", { class: "text-body-secondary small my-2", text: w.end }),
      goalCard(),
    );
    placePanel();
    showErrors();
  }

  if (form) {
    form.addEventListener("submit", function () {
      const out = { trigger: def.trigger, entry: def.entry, steps: def.steps, goal: def.goal || null };
      document.getElementById("journey-definition").value = JSON.stringify(out);
    });
  }

  render();
})();
