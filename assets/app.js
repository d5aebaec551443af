// hajimi dashboard: theme, copy buttons, local times, uptime, the overview chart and the
// log tail. Loaded in <head> (the theme is applied before the first paint); the rest runs
// once the page is parsed and again after every htmx swap.
(function () {
  "use strict";
  var root = document.documentElement;
  try { var t = localStorage.getItem("hajimi-theme"); if (t) root.setAttribute("data-theme", t); } catch (e) {}

  function dark() {
    var t = root.getAttribute("data-theme");
    return t ? t === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  }
  function fmtDuration(s) {
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m";
  }
  // Inside another site's frame (the Space page of Hugging Face) the browser keeps no session
  // cookie for this site, so the login form opens the dashboard in a tab of its own.
  var framed = true;
  try { framed = window.top !== window.self; } catch (e) {}
  function enhance(scope) {
    if (framed) {
      scope.querySelectorAll("#login form").forEach(function (f) {
        f.target = "_blank";
        var hint = f.querySelector("#login-new-tab");
        if (hint) hint.hidden = false;
      });
    }
    scope.querySelectorAll("time[data-unix]").forEach(function (el) {
      var d = new Date(Number(el.getAttribute("data-unix")) * 1000);
      el.dateTime = d.toISOString();
      el.textContent = d.toLocaleString(root.lang || [], { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
    });
    scope.querySelectorAll(".duration[data-seconds]").forEach(function (el) {
      el.textContent = fmtDuration(Number(el.getAttribute("data-seconds")));
    });
    chart();
  }
  var plots = [];
  var COLORS = ["#2563eb", "#d97706", "#16a34a", "#dc2626", "#7c3aed", "#0891b2"];
  function draw(box, series, data, extraAxis) {
    var fg = dark() ? "#e6e8eb" : "#1b1f24", grid = dark() ? "#2d343c" : "#d9dee3";
    var axis = { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } };
    var axes = [axis, Object.assign({ scale: "y", size: 40 }, axis)];
    if (extraAxis) axes.push(Object.assign({ scale: "tok", side: 1, size: 50 }, axis, { grid: { show: false } }));
    box.textContent = "";
    plots.push(new uPlot({ width: box.clientWidth || 300, height: 200, scales: { x: { time: true } }, axes: axes, series: series }, data, box));
  }
  function chart() {
    var data = document.getElementById("chart-data");
    if (!data || !window.uPlot) return;
    var d = JSON.parse(data.textContent);
    plots.forEach(function (p) { p.destroy(); });
    plots = [];
    var box = document.getElementById("chart-hourly");
    if (box) draw(box, [{ label: d.l_time }, { label: d.l_calls, stroke: COLORS[0], width: 2, fill: "rgba(37,99,235,.12)", scale: "y" },
      { label: d.l_tokens, stroke: COLORS[1], width: 1.5, scale: "tok" }], [d.t, d.calls, d.tokens], true);
    [["chart-models", d.models], ["chart-keys", d.keys]].forEach(function (c) {
      var el = document.getElementById(c[0]);
      if (!el || !c[1] || !c[1].length) return;
      var series = [{ label: d.l_time }], rows = [d.t];
      c[1].forEach(function (s, i) { series.push({ label: s.name, stroke: COLORS[i % COLORS.length], width: 2, scale: "y" }); rows.push(s.values); });
      draw(el, series, rows, false);
    });
  }
  function tail() {
    var table = document.getElementById("log-table");
    if (!table || !window.EventSource) return;
    var rows = document.getElementById("log-rows"), box = document.getElementById("tail");
    var model = table.getAttribute("data-model"), errors = table.getAttribute("data-errors");
    var level = table.getAttribute("data-level");
    var q = (table.getAttribute("data-q") || "").toLowerCase();
    var es = new EventSource(table.getAttribute("data-stream"));
    es.addEventListener("log", function (ev) {
      if (box && !box.checked) return;
      JSON.parse(ev.data).forEach(function (e) {
        if (model && e.model !== model) return;
        if (level && e.level !== level) return;
        if (errors && !(Number(e.status_code) >= 400)) return;
        if (q && e.formatted.toLowerCase().indexOf(q) < 0) return;
        var tr = document.createElement("tr");
        tr.className = "lv-" + String(e.level).toLowerCase();
        [e.timestamp, e.status_code, e.message, e.model, e.key, e.request_type + (e.dialect ? " · " + e.dialect : ""), e.error_message]
          .forEach(function (v, i) { var td = document.createElement("td"); td.textContent = v; if (i === 0 || i === 2 || i === 4) td.className = "mono"; tr.appendChild(td); });
        rows.insertBefore(tr, rows.firstChild);
        while (rows.children.length > 500) rows.removeChild(rows.lastChild);
      });
      var none = document.getElementById("no-logs"); if (none && rows.children.length) none.remove();
    });
  }
  document.addEventListener("change", function (ev) {
    if (ev.target.id !== "select-all") return;
    var form = ev.target.form;
    if (form) form.querySelectorAll("input[name=ids]").forEach(function (c) { c.checked = ev.target.checked; });
  });
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("button");
    if (!b) return;
    if (b.id === "theme-toggle") {
      var next = dark() ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { localStorage.setItem("hajimi-theme", next); } catch (e) {}
      chart();
    } else if (b.hasAttribute("data-copy")) {
      var src = document.getElementById(b.getAttribute("data-copy"));
      if (src) { src.select(); if (navigator.clipboard) navigator.clipboard.writeText(src.value); else document.execCommand("copy"); b.textContent = document.body.getAttribute("data-copied"); }
    } else if (b.hasAttribute("data-confirm") && !confirm(b.getAttribute("data-confirm"))) {
      ev.preventDefault();
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    tail();
    var resize; window.addEventListener("resize", function () { clearTimeout(resize); resize = setTimeout(chart, 150); });
  });
  window.addEventListener("load", chart);
  document.addEventListener("htmx:afterSettle", function (ev) { enhance(ev.target.ownerDocument ? document : document); });
})();
