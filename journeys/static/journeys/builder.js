// Journey builder: edits the definition {trigger, entry, steps, goal} through cards with dropdowns, date and
// time pickers and number boxes (never JSON), a vertical flow of steps whose branches, timeout paths and
// split paths stand side by side. Each step shows its live counts (by step id,
// the path the engine uses: "0", "1.then.0"). Branch and entry conditions are edited by the tag rule
// builder (crm_tags/rule_builder.js): its one panel moves into the card being edited and its textarea
// #id_definition carries the rule. Errors from a refused save are shown beside the step their path names.
// The counts panel's htmx refresh carries the step counts too; they are copied into the step cards.
// A step moves up or down within its list; the steps of that list then keep their ids (their paths at the
// time) as explicit "id"s, so each step's counts stay with it.
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
  let stats = data("journey-stats-data") || {};
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

  function picker(type, value, onChange) {
    const box = el("input", { type: type, class: "form-control form-control-sm", value: value || "" });
    box.addEventListener("input", function () { onChange(box.value); });
    return box;
  }

  function shownMoment(value) {
    // a datetime-local box shows "YYYY-MM-DDTHH:MM"; a date alone is its midnight
    if (typeof value !== "string") return "";
    if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return value + "T00:00";
    return /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(value) ? value.slice(0, 16) : "";
  }

  function textarea(value, onChange) {
    const box = el("textarea", { class: "form-control form-control-sm", rows: "2" });
    box.value = value || "";
    box.addEventListener("input", function () { onChange(box.value); });
    return box;
  }

  function first(list) { return list && list.length ? list[0][0] : null; }

  function checkbox(caption, checked, onChange, field) {
    const box = el("input", { type: "checkbox", class: "form-check-input", id: "jb-" + (++uid) });
    if (field) box.dataset.field = field;
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
  function newTrigger(kind, old) {
    const tag = old.tag || first(t.tags);
    if (kind === "event") return { kind: kind, event: first(t.events) };
    if (kind === "date") return { kind: kind, attribute: "birth_date", at: "09:00" };
    if (kind === "schedule") return { kind: kind, tag: tag, every: "day", at: "09:00" };
    return { kind: kind, tag: tag };
  }

  function eventCondition(tr, body) {
    const cond = tr.condition && typeof tr.condition === "object" ? tr.condition : null;
    const tidy = function () { if (tr.condition && !tr.condition.amount && !tr.condition.properties) delete tr.condition; };
    body.push(checkbox(w.amountCondition, cond && cond.amount, function (v) {
      if (v) { tr.condition = tr.condition || {}; tr.condition.amount = { op: ">=", value: 0 }; } else if (tr.condition) { delete tr.condition.amount; tidy(); }
      render();
    }, "amount-condition"));
    if (cond && cond.amount) {
      const amount = cond.amount;
      const row = el("div", { class: "d-flex flex-wrap align-items-end ms-4" });
      row.appendChild(labelled(w.amountOp, select(t.amountOps, amount.op, function (v) { amount.op = v; }), "amount-op"));
      row.appendChild(labelled(w.amountValue, number(amount.value, function (v) { amount.value = v; }), "amount-value"));
      body.push(row);
    }
    body.push(checkbox(w.propertyCondition, cond && cond.properties, function (v) {
      if (v) { tr.condition = tr.condition || {}; tr.condition.properties = { "": "" }; } else if (tr.condition) { delete tr.condition.properties; tidy(); }
      render();
    }, "property-condition"));
    if (cond && cond.properties && typeof cond.properties === "object") {
      body.push(keyValues(cond.properties, w.propertyKey, w.propertyValue, w.addProperty, "property"));
    }
  }

  function dateTrigger(tr, row) {
    const custom = typeof tr.attribute === "string" && tr.attribute.indexOf("attributes.") === 0;
    row.appendChild(labelled(w.dateAttribute, select(t.dateAttributes, custom ? "attributes." : tr.attribute, function (v) {
      tr.attribute = v; render();
    }), "date-attribute"));
    if (custom) row.appendChild(labelled(w.attributeKey, text(tr.attribute.slice("attributes.".length), function (v) { tr.attribute = "attributes." + v.trim(); }), "attribute-key"));
    const offset = "days_before" in tr ? "before" : ("days_after" in tr ? "after" : "on");
    row.appendChild(labelled(w.offset, select(t.offsets, offset, function (v) {
      const days = tr.days_before || tr.days_after || 3;
      delete tr.days_before; delete tr.days_after;
      if (v !== "on") tr["days_" + v] = days;
      render();
    }), "offset"));
    if (offset !== "on") {
      const key = "days_" + offset;
      row.appendChild(labelled(w.offsetDays, number(tr[key], function (v) { tr[key] = v; }, 0, 365), "offset-days"));
    }
    row.appendChild(labelled(w.at, picker("time", tr.at, function (v) { tr.at = v; }), "at"));
  }

  function scheduleTrigger(tr, row) {
    row.appendChild(labelled(w.tag, select(t.tags, tr.tag, function (v) { tr.tag = v; }, !tr.tag), "trigger-tag"));
    const repeat = tr.every || "once";
    row.appendChild(labelled(w.repeat, select(t.repeats, repeat, function (v) {
      delete tr.weekday;
      if (v === "once") { delete tr.every; tr.at = ""; } else { if (!tr.every) tr.at = "09:00"; tr.every = v; if (v === "week") tr.weekday = 1; }
      render();
    }), "repeat"));
    if (repeat === "once") {
      row.appendChild(labelled(w.onceAt, picker("datetime-local", shownMoment(tr.at), function (v) { tr.at = v; }), "once-at"));
      return;
    }
    if (repeat === "week") row.appendChild(labelled(w.weekday, select(t.weekdays, tr.weekday, function (v) { tr.weekday = Number(v); }), "weekday"));
    row.appendChild(labelled(w.at, picker("time", tr.at, function (v) { tr.at = v; }), "at"));
  }

  function triggerCard() {
    const tr = def.trigger;
    const body = [];
    const row = el("div", { class: "d-flex flex-wrap align-items-end" });
    const kind = tr.kind || "tag_entered";
    row.appendChild(labelled(w.customer, select(t.triggerKinds, kind, function (v) {
      def.trigger = newTrigger(v, tr);
      render();
    }), "trigger-kind"));
    body.push(row);
    if (kind === "tag_entered" || kind === "tag_exited") {
      row.appendChild(labelled(w.tag, select(t.tags, tr.tag, function (v) { tr.tag = v; }, !tr.tag), "trigger-tag"));
      if (kind === "tag_entered") body.push(checkbox(w.exitOnLeave, tr.exit_on_leave, function (v) { if (v) tr.exit_on_leave = true; else delete tr.exit_on_leave; }));
    } else if (kind === "event") {
      row.appendChild(labelled(w.event, select(t.events, tr.event, function (v) { tr.event = v; }), "trigger-event"));
      eventCondition(tr, body);
    } else if (kind === "date") {
      dateTrigger(tr, row);
    } else if (kind === "schedule") {
      scheduleTrigger(tr, row);
    }
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
    if ("wait" in step) {
      const wt = step.wait;
      if (!wt || typeof wt !== "object") return "other";
      return "until_event" in wt ? "wait_event" : ("until" in wt ? "wait_until" : "wait");
    }
    if ("branch" in step) return step.branch && typeof step.branch === "object" ? "branch" : "other";
    if ("split" in step) return Array.isArray(step.split) ? "split" : "other";
    if ("exit" in step) return "exit";
    if ("action" in step && t.stepKinds.some(function (k) { return k[0] === step.action; })) return step.action;
    return "other";
  }

  function evenly(arms) {
    const share = Math.floor(100 / arms.length);
    arms.forEach(function (arm, i) { arm.percent = share + (i === 0 ? 100 - share * arms.length : 0); });
  }

  function newStep(kind) {
    switch (kind) {
      case "wait": return { wait: { days: 1 } };
      case "wait_until": return { wait: { until: "" } };
      case "wait_event": return { wait: { until_event: first(t.events), timeout_days: 7 }, then: [], timeout: [] };
      case "branch": return { branch: { if: JSON.parse(JSON.stringify(DEFAULT_RULE)), then: [], else: [] } };
      case "split": return { split: [{ percent: 50, steps: [] }, { percent: 50, steps: [] }] };
      case "email": return { action: "email", template: first(t.emailTemplates) };
      case "webhook": return { action: "webhook", destination: first(t.destinations), template: {} };
      case "notify": return { action: "notify", team: first(t.teams) };
      case "ticket": return { action: "ticket", title: "", type: "data_support", urgency: "routine" };
      case "tag_add": case "tag_remove": return { action: kind, tag: first(t.manualTags) };
      case "touchpoint": return { action: "touchpoint", channel: t.channels.length ? t.channels[0] : "" };
      default: return { exit: true };
    }
  }

  function kindLabel(kind) {
    const found = t.stepKinds.find(function (k) { return k[0] === kind; });
    return found ? found[1] : "";
  }

  function counts(id) {
    const box = el("div", { class: "journey-counts small text-body-secondary", "data-step": id });
    ["passed", "acted", "skipped", "failed"].forEach(function (outcome) {
      box.appendChild(el("span", { class: "me-2" }, [w[outcome] + " ", el("strong", { "data-outcome": outcome, text: "0" })]));
    });
    return box;
  }

  function refreshCounts() {
    root.querySelectorAll(".journey-counts[data-step]").forEach(function (box) {
      const row = stats[box.dataset.step];
      box.querySelectorAll("[data-outcome]").forEach(function (n) { n.textContent = String(row ? row[n.dataset.outcome] || 0 : 0); });
    });
  }

  // rows of key / value text boxes over an object (a webhook's payload, an event's properties)
  function keyValues(obj, keyCaption, valueCaption, addCaption, field) {
    const box = el("div", { class: "journey-payload", "data-field": field + "s" });
    Object.keys(obj).forEach(function (key) {
      const row = el("div", { class: "d-flex flex-wrap align-items-end" });
      let current = key;
      row.appendChild(labelled(keyCaption, text(key, function (v) {
        const value = obj[current]; delete obj[current]; current = v; obj[current] = value;
      }), field + "-key"));
      row.appendChild(labelled(valueCaption, text(String(obj[key]), function (v) { obj[current] = v; }), field + "-value"));
      const remove = el("button", { type: "button", class: "btn btn-sm btn-link text-danger mb-2", text: w.remove });
      remove.addEventListener("click", function () { delete obj[current]; render(); });
      row.appendChild(remove);
      box.appendChild(row);
    });
    const add = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary mb-2", "data-action": "add-" + field, text: addCaption });
    add.addEventListener("click", function () { if (!("" in obj)) obj[""] = ""; render(); });
    box.appendChild(add);
    return box;
  }

  function setOrDrop(obj, key) {
    return function (v) { if (v === undefined || v === "") delete obj[key]; else obj[key] = v; };
  }

  function stepBody(step, kind) {
    const row = el("div", { class: "d-flex flex-wrap align-items-end" });
    if (kind === "wait") {
      row.appendChild(labelled(w.days, number(step.wait.days, setOrDrop(step.wait, "days"), 0), "days"));
      row.appendChild(labelled(w.hours, number(step.wait.hours, setOrDrop(step.wait, "hours"), 0), "hours"));
    } else if (kind === "wait_until") {
      row.appendChild(labelled(w.until, picker("datetime-local", shownMoment(step.wait.until), function (v) { step.wait.until = v; }), "until"));
    } else if (kind === "wait_event") {
      row.appendChild(labelled(w.untilEvent, select(t.events, step.wait.until_event, function (v) { step.wait.until_event = v; }), "until-event"));
      row.appendChild(labelled(w.timeoutDays, number(step.wait.timeout_days, setOrDrop(step.wait, "timeout_days"), 0), "timeout-days"));
      row.appendChild(labelled(w.timeoutHours, number(step.wait.timeout_hours, setOrDrop(step.wait, "timeout_hours"), 0), "timeout-hours"));
    } else if (kind === "email") {
      row.appendChild(labelled(w.template, select(t.emailTemplates, step.template, function (v) { step.template = numeric(v); }, step.template == null), "template"));
    } else if (kind === "webhook") {
      row.appendChild(labelled(w.destination, select(t.destinations, step.destination, function (v) { step.destination = numeric(v); }, step.destination == null), "destination"));
      if (!step.template || typeof step.template !== "object") step.template = {};
      return [row, keyValues(step.template, w.payloadKey, w.payloadValue, w.addPayload, "payload")];
    } else if (kind === "notify") {
      const who = "user" in step ? "user" : "team";
      row.appendChild(labelled(w.notifyWho, select(t.notifyWho, who, function (v) {
        delete step.team; delete step.user;
        step[v] = first(v === "user" ? t.users : t.teams);
        render();
      }), "notify-who"));
      if (who === "user") row.appendChild(labelled(w.user, select(t.users, step.user, function (v) { step.user = v; }, !step.user), "user"));
      else row.appendChild(labelled(w.team, select(t.teams, step.team, function (v) { step.team = v; }, !step.team), "team"));
      row.appendChild(labelled(w.message, text(step.message, setOrDrop(step, "message")), "message"));
    } else if (kind === "ticket") {
      row.appendChild(labelled(w.title, text(step.title, function (v) { step.title = v; }), "title"));
      row.appendChild(labelled(w.ticketType, select(t.ticketTypes, step.type || "data_support", function (v) { step.type = v; }), "type"));
      row.appendChild(labelled(w.urgency, select(t.ticketUrgencies, step.urgency || "routine", function (v) { step.urgency = v; }), "urgency"));
      const description = el("div", { class: "flex-grow-1" }, [labelled(w.description, textarea(step.description, setOrDrop(step, "description")), "description")]);
      return [row, description];
    } else if (kind === "tag_add" || kind === "tag_remove") {
      row.appendChild(labelled(w.tag, select(t.manualTags, step.tag, function (v) { step.tag = v; }, !step.tag), "tag"));
    } else if (kind === "touchpoint") {
      const box = text(step.channel, function (v) { step.channel = v.trim(); });
      const listId = "jb-channels-" + (++uid);
      box.setAttribute("list", listId);
      row.appendChild(labelled(w.channel, box, "channel"));
      row.appendChild(el("datalist", { id: listId }, t.channels.map(function (c) { return el("option", { value: c }); })));
      if (!t.hasCampaign) row.appendChild(el("p", { class: "small text-warning-emphasis mb-2", text: w.needsCampaign }));
    } else if (kind === "exit") {
      row.appendChild(el("p", { class: "small mb-0", text: w.exit }));
    } else {
      row.appendChild(el("p", { class: "small mb-1", text: w.other }));
      row.appendChild(el("code", { class: "small d-block text-break", text: JSON.stringify(step) }));
    }
    return [row];
  }

  // lists that stand side by side: a branch's two arms, a wait's arrived / timed out, a split's paths
  function sideBySide(columns) {
    const row = el("div", { class: "row g-2 journey-branches" });
    columns.forEach(function (c) {
      row.appendChild(el("div", { class: "col journey-arm", "data-arm": c.key }, c.head.concat([
        stepList(c.list, c.path, c.prefix),
      ])));
    });
    return row;
  }

  function splitBody(step, path, id) {
    const arms = step.split;
    const total = el("div", { class: "small mb-2", "data-split-total": path });
    const showTotal = function () {
      const sum = arms.reduce(function (n, arm) { return n + (Number(arm && arm.percent) || 0); }, 0);
      total.textContent = w.splitTotal + ": " + sum + " %" + (sum === 100 ? "" : " — " + w.splitMustBe100);
      total.classList.toggle("text-danger", sum !== 100);
    };
    const columns = arms.map(function (arm, i) {
      if (!arm || typeof arm !== "object") arms[i] = arm = { percent: 0, steps: [] };
      if (!Array.isArray(arm.steps)) arm.steps = [];
      const armPath = path + ".split[" + i + "]";
      const head = el("div", { class: "d-flex flex-wrap align-items-end gap-2", "data-path": armPath }, [
        el("div", { class: "small fw-semibold mb-2", text: w.path + " " + (i + 1) }),
        labelled(w.pathPercent, number(arm.percent, function (v) { arm.percent = v; showTotal(); }, 0, 100), "percent"),
      ]);
      if (arms.length > 2) {
        const remove = el("button", { type: "button", class: "btn btn-sm btn-link text-danger mb-2", "data-action": "remove-path", text: w.removePath });
        remove.addEventListener("click", function () { arms.splice(i, 1); evenly(arms); render(); });
        head.appendChild(remove);
      }
      return { key: "split" + i, head: [head, el("div", { class: "journey-errors", "data-errors-for": armPath })], list: arm.steps, path: armPath + ".steps", prefix: id + ".split" + i + "." };
    });
    const add = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary mb-2", "data-action": "add-path", text: w.addPath });
    add.addEventListener("click", function () { arms.push({ percent: 0, steps: [] }); evenly(arms); render(); });
    showTotal();
    return [el("div", { class: "d-flex align-items-center gap-3" }, [total, add]), sideBySide(columns)];
  }

  // --- step ids: counts (and the engine) know a step by its id, a path unless the step names its own ---
  function hasOwnId(step) { return !!step && typeof step === "object" && typeof step.id === "string"; }

  // every id the definition's steps carry now, as journeys/definition.py computes them
  function idsInUse() {
    const used = new Set();
    const walk = function (list, prefix) {
      (Array.isArray(list) ? list : []).forEach(function (step, i) {
        const id = hasOwnId(step) ? step.id : prefix + i;
        used.add(id);
        if (!step || typeof step !== "object") return;
        if (step.branch && typeof step.branch === "object") { walk(step.branch.then, id + ".then."); walk(step.branch.else, id + ".else."); }
        walk(step.then, id + ".then."); walk(step.timeout, id + ".timeout.");
        (Array.isArray(step.split) ? step.split : []).forEach(function (arm, a) { if (arm) walk(arm.steps, id + ".split" + a + "."); });
      });
    };
    walk(def.steps, "");
    return used;
  }

  // before a list's steps change places, each keeps the id it has now (its path), so its counts and the
  // ids of the steps inside it go with it
  function pinIds(list, prefix) {
    list.forEach(function (step, i) { if (step && typeof step === "object" && !hasOwnId(step)) step.id = prefix + i; });
  }

  // a step added where its path is already some kept id gets the next free one of that list
  function addStep(list, prefix, step) {
    const used = idsInUse();
    if (used.has(prefix + list.length)) {
      let n = list.length;
      while (used.has(prefix + n)) n += 1;
      step.id = prefix + n;
    }
    list.push(step);
  }

  function moveStep(list, prefix, index, by) {
    const to = index + by;
    if (to < 0 || to >= list.length) return;
    pinIds(list, prefix);
    const moved = list.splice(index, 1)[0];
    list.splice(to, 0, moved);
    render();
  }

  function removeStep(list, prefix, index) {
    if (list.some(hasOwnId)) pinIds(list, prefix); // kept ids and paths must not meet after the removal
    list.splice(index, 1);
    render();
  }

  function stepCard(step, list, index, path, id, prefix) {
    const kind = kindOf(step);
    const node = el("div", { class: "card journey-step mb-0", "data-path": path, "data-step-id": id, "data-kind": kind });
    const remove = el("button", { type: "button", class: "btn btn-sm btn-link text-danger p-0", "data-action": "remove-step", text: w.remove });
    remove.addEventListener("click", function () { removeStep(list, prefix, index); });
    const up = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary py-0 px-1 ms-auto", "data-action": "move-up", title: w.moveUp, "aria-label": w.moveUp, disabled: index === 0, text: "↑" });
    up.addEventListener("click", function () { moveStep(list, prefix, index, -1); });
    const down = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary py-0 px-1", "data-action": "move-down", title: w.moveDown, "aria-label": w.moveDown, disabled: index === list.length - 1, text: "↓" });
    down.addEventListener("click", function () { moveStep(list, prefix, index, 1); });
    node.appendChild(el("div", { class: "card-header py-1 d-flex align-items-center gap-2" }, [
      el("span", { class: "text-body-secondary", text: (index + 1) + "." }),
      el("span", { class: "fw-semibold", text: kindLabel(kind) || w.other }), up, down, remove,
    ]));
    const body = el("div", { class: "card-body py-2" });
    const parts = [];
    if (kind === "branch") {
      parts.push(conditionControls(step.branch, "if"));
      parts.push(sideBySide([["then", w.then], ["else", w.else]].map(function ([key, caption]) {
        step.branch[key] = Array.isArray(step.branch[key]) ? step.branch[key] : [];
        return { key: key, head: [el("div", { class: "small fw-semibold mb-1", text: caption })], list: step.branch[key], path: path + ".branch." + key, prefix: id + "." + key + "." };
      })));
    } else if (kind === "split") {
      splitBody(step, path, id).forEach(function (part) { parts.push(part); });
    } else {
      stepBody(step, kind).forEach(function (part) { parts.push(part); });
      if (kind === "wait_event") {
        parts.push(sideBySide([["then", w.arrived], ["timeout", w.timedOut]].map(function ([key, caption]) {
          step[key] = Array.isArray(step[key]) ? step[key] : [];
          return { key: key, head: [el("div", { class: "small fw-semibold mb-1", text: caption })], list: step[key], path: path + "." + key, prefix: id + "." + key + "." };
        })));
      }
    }
    parts.forEach(function (part) { body.appendChild(part); });
    body.appendChild(el("div", { class: "journey-errors", "data-errors-for": path }));
    body.appendChild(counts(id));
    node.appendChild(body);
    return node;
  }

  function stepList(list, path, prefix) {
    const flow = el("div", { class: "journey-flow", "data-list": path });
    list.forEach(function (step, i) {
      const id = step && typeof step === "object" && typeof step.id === "string" ? step.id : prefix + i;
      flow.appendChild(stepCard(step, list, i, path + "[" + i + "]", id, prefix));
      flow.appendChild(el("div", { class: "journey-connector", "aria-hidden": "true" }));
    });
    const add = el("div", { class: "journey-add d-flex flex-wrap align-items-end" });
    let chosen = t.stepKinds[0][0];
    add.appendChild(labelled(w.addStepHere, select(t.stepKinds, chosen, function (v) { chosen = v; }), "add-kind"));
    const button = el("button", { type: "button", class: "btn btn-sm btn-outline-primary mb-2", "data-action": "add-step", text: w.addStep });
    button.addEventListener("click", function () { addStep(list, prefix, newStep(chosen)); render(); });
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
    refreshCounts();
  }

  // the counts panel's htmx refresh brings the step counts with it
  document.body.addEventListener("htmx:afterSettle", function () {
    if (!document.getElementById("journey-stats")) return;
    stats = data("journey-stats-data") || {};
    refreshCounts();
  });

  if (form) {
    form.addEventListener("submit", function () {
      const cond = def.trigger.condition;
      if (cond && cond.properties && typeof cond.properties === "object") {
        delete cond.properties[""]; // a property row left without a name
        if (!Object.keys(cond.properties).length) delete cond.properties;
        if (!cond.amount && !cond.properties) delete def.trigger.condition;
      }
      const out = { trigger: def.trigger, entry: def.entry, steps: def.steps, goal: def.goal || null };
      document.getElementById("journey-definition").value = JSON.stringify(out);
    });
  }

  render();
})();
