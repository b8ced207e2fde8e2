// The admin dashboard: draws the statistics from /api/admin/stats as inline SVG charts and
// refreshes them while the page is visible. No libraries, no external requests.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);

  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }

  const statsBlock = $("stats");
  if (!statsBlock) return; // the sign-in or "turned off" page
  const strings = JSON.parse($("strings").textContent);
  let stats = JSON.parse(statsBlock.textContent);

  const SVG = "http://www.w3.org/2000/svg";
  const PALETTE = ["#c44d76", "#e98aa5", "#7c9a6d", "#d9a35b", "#8a6fb0", "#5b8fb0", "#b0705b"];
  const ERROR_COLOUR = "#c44d76";
  const REFUSAL_COLOUR = "#d9a35b";
  const lang = document.documentElement.lang || "en";

  function t(key, params) {
    let text = strings[key] || key;
    for (const [name, value] of Object.entries(params || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  const number = (n) => Number(n || 0).toLocaleString(lang);

  function el(name, attrs, parent, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  // Charts are drawn at the width they are shown at, so their text stays readable.
  const widthOf = (box) => Math.max(260, Math.round(box.clientWidth || 400));

  function svg(box, width, height, label) {
    box.replaceChildren();
    const root = el("svg", {
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      class: "chart-svg",
    });
    el("title", {}, root, label);
    box.appendChild(root);
    return root;
  }

  function empty(box, label) {
    const width = widthOf(box);
    const root = svg(box, width, 120, label);
    el("text", { x: width / 2, y: 64, "text-anchor": "middle", class: "empty" }, root, t("web.admin_no_data"));
  }

  function legend(box, entries) {
    const list = document.createElement("ul");
    list.className = "legend";
    for (const [name, colour] of entries) {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colour;
      item.append(swatch, name);
      list.appendChild(item);
    }
    box.appendChild(list);
  }

  function niceMax(value) {
    if (value <= 4) return value <= 2 ? 2 : 4; // even, so the middle grid line is a whole number
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (step * power >= value) return step * power;
    }
    return value;
  }

  function perDay(box, summary, days) {
    const label = t("web.admin_per_day");
    if (!summary.per_day.length) return empty(box, label);
    const platforms = [...new Set(summary.per_day.map((d) => d.platform))].sort();
    const counts = new Map();
    for (const d of summary.per_day) counts.set(d.day + "|" + d.platform, d.conversions);
    const totals = days.map((day) => platforms.reduce((s, p) => s + (counts.get(day + "|" + p) || 0), 0));
    const width = widthOf(box);
    const height = width < 500 ? 190 : 240;
    const left = 40;
    const bottom = 34;
    const top = 12;
    const plotH = height - top - bottom;
    const max = niceMax(Math.max(...totals));
    const root = svg(box, width, height, label);
    for (const fraction of [0, 0.5, 1]) {
      const y = top + plotH * (1 - fraction);
      el("line", { x1: left, x2: width, y1: y, y2: y, class: "axis" }, root);
      el("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, root, number(max * fraction));
    }
    const step = (width - left) / days.length;
    const barW = Math.max(2, step * 0.72);
    const every = Math.ceil(days.length / Math.max(2, Math.floor((width - left) / 58)));
    days.forEach((day, i) => {
      let y = top + plotH;
      const x = left + i * step + (step - barW) / 2;
      platforms.forEach((platform, p) => {
        const n = counts.get(day + "|" + platform) || 0;
        if (!n) return;
        const h = (plotH * n) / max;
        y -= h;
        const bar = el("rect", { x, y, width: barW, height: h, rx: 2, fill: PALETTE[p % PALETTE.length] }, root);
        el("title", {}, bar, `${day} ${platform}: ${number(n)}`);
      });
      if (i % every === 0 || i === days.length - 1) {
        el("text", { x: x + barW / 2, y: height - bottom + 16, "text-anchor": "middle" }, root, day.slice(5));
      }
    });
    legend(box, platforms.map((p, i) => [p, PALETTE[i % PALETTE.length]]));
  }

  function horizontal(box, label, rows) {
    if (!rows.length) return empty(box, label);
    const width = widthOf(box);
    const rowH = 30;
    const labelW = Math.min(140, Math.round(width * 0.36));
    const height = rows.length * rowH + 8;
    const max = Math.max(...rows.map((r) => r.value));
    const root = svg(box, width, height, label);
    rows.forEach((row, i) => {
      const y = 4 + i * rowH;
      const fit = Math.max(6, Math.floor(labelW / 7.5));
      const text = row.label.length > fit ? row.label.slice(0, fit - 1) + "…" : row.label;
      el("text", { x: labelW - 8, y: y + 18, "text-anchor": "end" }, root, text);
      const w = Math.max(2, ((width - labelW - 50) * row.value) / max);
      const bar = el("rect", { x: labelW, y: y + 4, width: w, height: rowH - 10, rx: 5, fill: row.colour }, root);
      el("title", {}, bar, `${row.label}: ${number(row.value)}`);
      el("text", { x: labelW + w + 6, y: y + 18, class: "value" }, root, number(row.value));
    });
  }

  function perStyle(box, summary, labels) {
    const rows = Object.entries(summary.per_style)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([name, value], i) => ({ label: labels[name] || name, value, colour: PALETTE[i % PALETTE.length] }));
    horizontal(box, t("web.admin_per_style"), rows);
  }

  function errorKinds(box, summary) {
    const rows = [
      ...Object.entries(summary.error_kinds).map(([k, v]) => ({ label: k, value: v, colour: ERROR_COLOUR })),
      ...Object.entries(summary.refusal_reasons).map(([k, v]) => ({ label: k, value: v, colour: REFUSAL_COLOUR })),
    ]
      .sort((a, b) => b.value - a.value)
      .slice(0, 10);
    horizontal(box, t("web.admin_error_kinds"), rows);
    if (rows.length) {
      legend(box, [
        [t("web.admin_error"), ERROR_COLOUR],
        [t("web.admin_refusal"), REFUSAL_COLOUR],
      ]);
    }
  }

  function latency(box, summary) {
    const label = t("web.admin_latency");
    const groups = [
      [t("web.admin_queue_wait"), summary.queue_wait_p50_ms, summary.queue_wait_p95_ms],
      [t("web.admin_compute"), summary.compute_p50_ms, summary.compute_p95_ms],
    ];
    if (groups.every(([, a, b]) => a === null && b === null)) return empty(box, label);
    const width = widthOf(box);
    const height = 220;
    const top = 20;
    const bottom = 30;
    const plotH = height - top - bottom;
    const max = niceMax(Math.max(1, ...groups.flatMap(([, a, b]) => [a || 0, b || 0])));
    const root = svg(box, width, height, label);
    el("line", { x1: 0, x2: width, y1: top + plotH, y2: top + plotH, class: "axis" }, root);
    const colours = [PALETTE[1], PALETTE[0]];
    groups.forEach(([name, p50, p95], g) => {
      const centre = (width / 4) * (1 + 2 * g);
      [p50, p95].forEach((value, k) => {
        const barW = Math.min(58, Math.round(width / 9));
        const x = centre - barW - 4 + k * (barW + 8);
        const h = ((value || 0) * plotH) / max;
        const bar = el("rect", { x, y: top + plotH - h, width: barW, height: Math.max(h, 1), rx: 4, fill: colours[k] }, root);
        el("title", {}, bar, `${name} p${k ? 95 : 50}: ${value === null ? "n/a" : number(value) + " ms"}`);
        el(
          "text",
          { x: x + barW / 2, y: top + plotH - h - 6, "text-anchor": "middle", class: "value" },
          root,
          value === null ? "n/a" : number(value),
        );
      });
      el("text", { x: centre, y: height - 8, "text-anchor": "middle" }, root, name);
    });
    legend(box, [
      ["p50", colours[0]],
      ["p95", colours[1]],
    ]);
  }

  function failures(rows) {
    const body = $("failures");
    body.replaceChildren();
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 6;
      td.textContent = t("web.admin_no_failures");
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    for (const f of rows) {
      const when = new Date(f.created_at).toISOString().replace("T", " ").slice(0, 19);
      const status = f.status === "refused" ? t("web.admin_refusal") : t("web.admin_error");
      const tr = document.createElement("tr");
      for (const value of [when, f.platform, f.style || "–", status, f.error_kind || "–", f.request_id || "–"]) {
        const td = document.createElement("td");
        td.textContent = value;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  function render(data) {
    const s = data.summary;
    $("t-total").textContent = number(s.total);
    $("t-ok").textContent = number(s.ok);
    $("t-error").textContent = number(s.error);
    $("t-refused").textContent = number(s.refused);
    $("t-users").textContent = number(s.unique_users);
    $("t-cache").textContent = Math.round(100 * s.cache_hit_rate) + "%";
    $("t-waiting").textContent = number(data.now.queue_waiting);
    $("t-running").textContent = number(data.now.running);
    perDay($("chart-days"), s, data.day_list);
    perStyle($("chart-styles"), s, data.style_labels || {});
    latency($("chart-latency"), s);
    errorKinds($("chart-errors"), s);
    failures(data.failures);
    const time = new Date(data.generated_at).toLocaleTimeString(lang);
    $("updated").textContent = t("web.admin_updated", { time });
    document.body.dataset.statsRendered = String(data.generated_at);
  }

  async function refresh() {
    if (document.hidden) return;
    try {
      const response = await fetch("/api/admin/stats?days=" + stats.days, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.status === 401) {
        window.location.reload();
        return;
      }
      if (response.ok) {
        stats = await response.json();
        render(stats);
      }
    } catch (_) {
      // The next refresh tries again.
    }
  }

  render(stats);
  setInterval(refresh, 15000);
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => render(stats), 150);
  });
})();
