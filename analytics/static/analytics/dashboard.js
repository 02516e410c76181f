// Dashboards: every chart card fetches its own figures (so one slow chart never holds the page),
// draws them with plotly.js, shows "as of HH:MM" and stale-source warnings, and opens the list
// behind a bar or point when it is clicked. No inline scripts, no eval: CSP allows our files only.
(function () {
  "use strict";
  const grid = document.getElementById("chart-grid");
  if (!grid || !window.Plotly) return;
  const lang = document.documentElement.lang || "en";
  const timeZone = grid.dataset.timeZone || undefined;
  const asOfLabel = grid.dataset.asOfLabel || "as of";
  const errorLabel = grid.dataset.errorLabel || "Error";
  const clock = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: timeZone });
  // plotly-locale-zh-cn.js: the page's language (month names, toolbar tooltips) and our defaults
  const plotConfig = window.plotlyConfig({ modeBarButtonsToRemove: ["select2d", "lasso2d"] });
  const colors = ["#0d6efd", "#fd7e14", "#198754", "#6f42c1", "#dc3545", "#20c997", "#ffc107", "#6c757d", "#0dcaf0", "#d63384"];

  function withParam(url, name, value) {
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + encodeURIComponent(name) + "=" + encodeURIComponent(value);
  }

  function formatNumber(value, format) {
    if (value === null || value === undefined) return "–";
    // the formats of campaigns/figures.py FORMATS: one definition for pages, charts and e-mails
    if (format === "percent") return (value * 100).toLocaleString(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) + "%";
    if (format === "multiple") return Number(value).toLocaleString(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 }) + "×";
    if (format === "count") return Number(value).toLocaleString(lang, { maximumFractionDigits: 0 });
    return Number(value).toLocaleString(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function layoutFor(data, extra) {
    const layout = {
      margin: { l: 56, r: 16, t: 8, b: 48 },
      height: 320,
      legend: { orientation: "h", y: -0.2 },
      hovermode: "closest",
      colorway: colors,
      xaxis: { automargin: true },
      yaxis: { automargin: true, rangemode: "tozero" },
    };
    if (data.unit === "share") layout.yaxis.tickformat = ".0%";
    return Object.assign(layout, extra || {});
  }

  function isEmpty(data) {
    if (data.tiles) return false;
    if (data.z) return data.z.length === 0;
    if (!data.x || data.x.length === 0) return true;
    return (data.series || []).every(function (s) {
      const values = s.values || [];
      return values.every(function (v) { return !v; });
    }) && !(data.series || []).some(function (s) { return s.metrics; });
  }

  function renderTiles(target, data) {
    target.textContent = "";
    const row = document.createElement("div");
    row.className = "row g-2";
    data.tiles.forEach(function (tile) {
      const col = document.createElement("div");
      col.className = "col-6 col-md-4 col-xl-2";
      const box = document.createElement(tile.link ? "a" : "div");
      box.className = "d-block border rounded p-2 h-100 text-decoration-none";
      box.dataset.tile = tile.key;
      if (tile.link) box.href = tile.link;
      const label = document.createElement("div");
      label.className = "small text-body-secondary";
      label.textContent = tile.label;
      const value = document.createElement("div");
      value.className = "fs-4 fw-semibold";
      value.textContent = formatNumber(tile.value, tile.format);
      box.appendChild(label);
      box.appendChild(value);
      col.appendChild(box);
      row.appendChild(col);
    });
    target.appendChild(row);
  }

  function barTraces(data, options) {
    return data.series.map(function (s) {
      return { type: "bar", name: s.name, x: data.x, y: s.values, customdata: s.links || [], hovertemplate: options.hover };
    });
  }

  function metricSelect(card, data, onChange) {
    const select = card.querySelector("[data-metric-select]");
    if (!select) return null;
    if (!select.options.length) {
      Object.keys(data.metrics || {}).forEach(function (key) {
        const option = document.createElement("option");
        option.value = key;
        option.textContent = data.metrics[key];
        select.appendChild(option);
      });
      (data.series || []).forEach(function (s) {
        if (!data.metrics && s.key) {
          const option = document.createElement("option");
          option.value = s.key;
          option.textContent = s.name;
          select.appendChild(option);
        }
      });
      select.value = data.default_metric || select.options[0].value;
    }
    select.onchange = onChange;
    return select.value;
  }

  const RATIO_METRICS = ["roi", "ctr", "cvr"];  // percentages; ROAS is a multiple (×)

  function draw(card, payload) {
    const target = card.querySelector("[data-plot]");
    const empty = card.querySelector("[data-empty]");
    const data = payload.data;
    const kind = card.dataset.kind;
    const hasData = !isEmpty(data);
    empty.classList.toggle("d-none", hasData);
    target.classList.toggle("d-none", !hasData);
    if (!hasData) return;
    if (kind === "kpis") { renderTiles(target, data); return; }
    let traces = [];
    let layout = layoutFor(data);
    if (kind === "grouped_bar" || kind === "stacked_bar" || kind === "bar" || kind === "diverging_bar") {
      traces = barTraces(data, {});
      layout.barmode = kind === "stacked_bar" ? "stack" : (kind === "diverging_bar" ? "relative" : "group");
      if (kind === "diverging_bar") layout.yaxis.rangemode = "normal";
    } else if (kind === "line") {
      traces = data.series.map(function (s) {
        return { type: "scatter", mode: "lines+markers", name: s.name, x: data.x, y: s.values,
                 customdata: s.links || data.x.map(function () { return s.link || ""; }) };
      });
    } else if (kind === "metric_line") {
      const metric = metricSelect(card, data, function () { draw(card, payload); });
      traces = data.series.map(function (s) {
        return { type: "scatter", mode: "lines+markers", name: s.name, x: data.x, y: s.metrics[metric],
                 customdata: data.x.map(function () { return s.link || ""; }) };
      });
      if (RATIO_METRICS.indexOf(metric) >= 0) layout.yaxis.tickformat = ".0%";
      layout.yaxis.rangemode = metric === "roi" ? "normal" : "tozero";
    } else if (kind === "metric_bar") {
      const metric = metricSelect(card, data, function () { draw(card, payload); });
      const series = data.series.filter(function (s) { return s.key === metric; })[0] || data.series[0];
      traces = [{ type: "bar", name: series.name, x: data.x_labels || data.x, y: series.values, customdata: series.links || [] }];
      if (RATIO_METRICS.indexOf(metric) >= 0) layout.yaxis.tickformat = ".0%";
      layout.yaxis.rangemode = metric === "roi" ? "normal" : "tozero";
    } else if (kind === "funnel") {
      const s = data.series[0];
      traces = [{ type: "funnel", y: data.x, x: s.values, textinfo: "value+percent previous" }];
      layout.margin.l = 110;
    } else if (kind === "heatmap") {
      traces = [{ type: "heatmap", x: data.x, y: data.y, z: data.z, colorscale: "Blues", zmin: 0, zmax: 1,
                  customdata: data.z.map(function (row, i) { return row.map(function () { return data.links[i]; }); }),
                  hovertemplate: "%{y} +%{x}: %{z:.1%}<extra></extra>" }];
      layout.yaxis = { automargin: true, type: "category", autorange: "reversed" };
      layout.xaxis = { type: "category", automargin: true };
    }
    window.Plotly.react(target, traces, layout, plotConfig).then(function () {
      if (target.dataset.clickBound) return;
      target.dataset.clickBound = "1";
      target.on("plotly_click", function (event) {
        const point = event && event.points && event.points[0];
        const link = point && point.customdata;
        if (typeof link === "string" && link) window.location.assign(link);
      });
    });
  }

  function load(card, refresh) {
    const url = refresh ? withParam(card.dataset.url, "refresh", "1") : card.dataset.url;
    const warnings = card.querySelector("[data-warnings]");
    const asOf = card.querySelector("[data-as-of]");
    card.classList.add("htmx-request");
    card.setAttribute("aria-busy", "true");
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (payload) {
        // where the figures were read (config/db_router.py): a replica's note carries its replay time and lag
        asOf.textContent = payload.data_source === "replica" && payload.data_note
          ? payload.data_note
          : asOfLabel + " " + clock.format(new Date(payload.as_of)) + (payload.data_note ? " · " + payload.data_note : "");
        asOf.dataset.source = payload.data_source || "";
        asOf.dataset.asOf = payload.as_of;
        warnings.textContent = (payload.warnings || []).join(" ");
        warnings.classList.toggle("d-none", !(payload.warnings || []).length);
        draw(card, payload);
        card.dataset.loaded = "1";
      })
      .catch(function () {
        warnings.textContent = errorLabel;
        warnings.classList.remove("d-none");
        card.dataset.loaded = "error";
      })
      .finally(function () {
        card.classList.remove("htmx-request");
        card.removeAttribute("aria-busy");
      });
  }

  const cards = Array.prototype.slice.call(grid.querySelectorAll("[data-chart]"));
  cards.forEach(function (card) {
    card.querySelector("[data-refresh]").addEventListener("click", function () { load(card, true); });
    load(card, false);
  });
  const all = document.getElementById("refresh-all");
  if (all) all.addEventListener("click", function () { cards.forEach(function (card) { load(card, true); }); });
})();
