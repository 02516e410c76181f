// Campaign page charts: plotly.js reads the JSON the server embeds with json_script (no inline script).
(function () {
  "use strict";

  function groupBy(rows, key) {
    var out = {};
    rows.forEach(function (row) { (out[row[key]] = out[row[key]] || []).push(row); });
    return out;
  }

  // plotly.js is big (4.8 MB): fetched once, the first time a tab with a chart is shown.
  var plotlySrc = (document.getElementById("campaign-js") || {}).dataset;
  var plotlyLoading = null;

  function withPlotly(then) {
    if (typeof Plotly !== "undefined") { then(); return; }
    if (!plotlyLoading) {
      plotlyLoading = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = plotlySrc && plotlySrc.plotlySrc;
        script.onload = resolve;
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    plotlyLoading.then(then);
  }

  // Whole days on the time axis, however short the campaign (plotly would tick a 3-day range by hours).
  function dayAxis(dates) {
    var days = {};
    dates.forEach(function (d) { days[d] = true; });
    var axis = { type: "date", tickformat: "%m-%d", hoverformat: "%Y-%m-%d" };
    if (Object.keys(days).length <= 14) axis.dtick = 86400000;
    return axis;
  }

  function draw(root) {
    var holder = root.querySelector ? root.querySelector("#campaign-chart-data") : null;
    if (!holder) return;
    withPlotly(function () { drawCharts(holder); });
  }

  function drawCharts(holder) {
    var data = JSON.parse(holder.textContent);
    var labels = data.labels;
    var channelNames = labels.channels || {};
    var config = window.plotlyConfig();  // plotly-locale-zh-cn.js: month names and tooltips in the page's language
    function channelName(code) { return channelNames[code] || code; }
    var byDay = document.getElementById("chart-by-day");
    if (byDay) {
      var perChannel = groupBy(data.by_day_channel, "channel");
      var traces = Object.keys(perChannel).map(function (channel) {
        var rows = perChannel[channel];
        return { type: "bar", name: channelName(channel) + " · " + labels.spend, x: rows.map(function (r) { return r.date; }),
                 y: rows.map(function (r) { return r.spend; }) };
      });
      traces.push({ type: "scatter", mode: "lines+markers", name: labels.revenue, yaxis: "y",
                    x: data.daily.map(function (r) { return r.date; }), y: data.daily.map(function (r) { return r.revenue; }) });
      Plotly.newPlot(byDay, traces, { title: { text: labels.by_day }, barmode: "stack", margin: { t: 40, r: 10, l: 50, b: 40 },
                                      legend: { orientation: "h" },
                                      xaxis: dayAxis(data.daily.map(function (r) { return r.date; })) }, config);
    }
    var byChannel = document.getElementById("chart-by-channel");
    if (byChannel) {
      var channels = data.by_channel.map(function (r) { return channelName(r.channel); });
      Plotly.newPlot(byChannel, [
        { type: "bar", name: labels.spend, x: channels, y: data.by_channel.map(function (r) { return r.spend; }) },
        { type: "bar", name: labels.revenue, x: channels, y: data.by_channel.map(function (r) { return r.revenue; }) }
      ], { title: { text: labels.by_channel }, barmode: "group", margin: { t: 40, r: 10, l: 50, b: 40 } }, config);
    }
    var funnel = document.getElementById("chart-funnel");
    if (funnel) {
      Plotly.newPlot(funnel, [{ type: "funnel", textinfo: "value+percent previous",
        y: data.funnel.map(function (s) { return labels.steps[s.step] || s.step; }),
        x: data.funnel.map(function (s) { return s.value; }) }],
        { title: { text: labels.funnel }, margin: { t: 40, r: 10, l: 100, b: 20 } }, config);
    }
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
  // Keep the active tab in step with htmx tab loads.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("#campaign-tabs [data-tab]");
    if (!link) return;
    document.querySelectorAll("#campaign-tabs [data-tab]").forEach(function (el) { el.classList.toggle("active", el === link); });
  });
})();
