/* The Reports page: reads /api/v1/reports/* and /api/v1/analytics/* with the session and draws them with
   Chart.js (static/vendor/chartjs). No state beyond the date range, which lives in the URL's query. */
(function () {
  "use strict";
  const root = document.getElementById("reports");
  const names = JSON.parse(document.getElementById("report-names").textContent);
  const fill = (text, values) => text.replace(/%\((\w+)\)s/g, (_, k) => values[k]);
  const $ = (id) => document.getElementById(id);
  const fmt = new Intl.NumberFormat();
  const charts = {};
  // Words from Django's JavaScript catalog (/jsi18n/, loaded before this file).
  const words = (text, values) => interpolate(text, values, true);
  const SERIES = {sent: gettext("Sent"), delivered: gettext("Delivered"), read: gettext("Read"), failed: gettext("Failed"),
                  inbound: gettext("Inbound")};
  const COLORS = {sent: "#3b82f6", delivered: "#10b981", read: "#8b5cf6", failed: "#ef4444", inbound: "#f59e0b"};
  const PALETTE = ["#3b82f6", "#10b981", "#8b5cf6", "#f59e0b", "#ef4444", "#14b8a6", "#ec4899", "#64748b"];

  function range() {
    return {from: $("from").value, to: $("to").value};
  }

  function url(report, group) {
    const r = range();
    const q = new URLSearchParams({from: r.from, to: r.to, group_by: group});
    return "/api/v1/reports/" + report + "?" + q.toString();
  }

  async function get(report, group) {
    const res = await fetch(url(report, group), {headers: {Accept: "application/json"}, credentials: "same-origin"});
    const body = await res.json();
    if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
    return body.data;
  }

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart($(id), config);
  }

  const moneyFmt = new Intl.NumberFormat(undefined, {minimumFractionDigits: 2, maximumFractionDigits: 2});
  const money = (v) => moneyFmt.format(Number(v));  // grouped like the counts: 108,638.60
  const pctFmt = new Intl.NumberFormat(undefined, {style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1});
  const pct = (v) => (v === null || v === undefined) ? "–" : pctFmt.format(v);
  let loading = 0;  // the latest load: an older answer arriving late is dropped

  function totals(rows, bill) {
    const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
    const sent = sum("sent"), delivered = sum("delivered"), read = sum("read");
    $("t-sent").textContent = fmt.format(sent);
    $("t-delivered").textContent = fmt.format(delivered);
    $("t-read").textContent = fmt.format(read);
    $("t-failed").textContent = fmt.format(sum("failed"));
    $("t-delivery-rate").textContent = sent ? words(gettext("%(rate)s of sent"), {rate: pct(delivered / sent)}) : "";
    $("t-read-rate").textContent = delivered ? words(gettext("%(rate)s of delivered"), {rate: pct(read / delivered)}) : "";
    const charged = bill.reduce((a, r) => a + Number(r.charged), 0);
    const refunded = bill.reduce((a, r) => a + Number(r.refunded), 0);
    $("t-spent").textContent = money(charged - refunded);
    $("t-refunded").textContent = refunded ? words(gettext("%(amount)s refunded"), {amount: money(refunded)}) : "";
  }

  function topTable(id, rows, cells) {
    const body = $(id);
    body.replaceChildren();
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 4; td.className = "muted"; td.textContent = gettext("Nothing in this range.");
      tr.append(td); body.append(tr);
      return;
    }
    for (const row of rows) {
      const tr = document.createElement("tr");
      for (const value of cells(row)) {
        const td = document.createElement("td");
        td.textContent = value;
        tr.append(td);
      }
      body.append(tr);
    }
  }

  async function load() {
    const err = $("range-error");
    err.hidden = true;
    const mine = ++loading;
    root.setAttribute("aria-busy", "true");  // dims the figures until the new range's answers are drawn
    try {
      const [daily, bill, byCategory, byCountry, byTemplate, byCampaign] = await Promise.all([
        get("messaging", "day"), get("billing", "day"), get("billing", "category"), get("billing", "country"),
        get("messaging", "template"), get("billing", "campaign")]);
      if (mine !== loading) return;
      totals(daily, bill);
      const labels = daily.map((r) => r.group);
      draw("c-volume", {type: "bar", data: {labels, datasets: ["sent", "delivered", "read", "failed", "inbound"].map((k) => ({
        label: SERIES[k], data: daily.map((r) => r[k]), backgroundColor: COLORS[k],
        type: k === "inbound" ? "line" : "bar", borderColor: COLORS[k], tension: 0.3}))},
        options: {responsive: true, maintainAspectRatio: false, interaction: {mode: "index", intersect: false},
                  scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}});
      draw("c-rates", {type: "line", data: {labels, datasets: [
        {label: gettext("Delivery rate"), data: daily.map((r) => r.delivery_rate === null ? null : r.delivery_rate * 100), borderColor: COLORS.delivered, backgroundColor: COLORS.delivered, tension: 0.3, spanGaps: true},
        {label: gettext("Read rate"), data: daily.map((r) => r.read_rate === null ? null : r.read_rate * 100), borderColor: COLORS.read, backgroundColor: COLORS.read, tension: 0.3, spanGaps: true}]},
        options: {responsive: true, maintainAspectRatio: false, scales: {y: {min: 0, max: 100, ticks: {callback: (v) => v + " %"}}}}});
      const spend = (rows) => rows.filter((r) => Number(r.charged) > 0).sort((a, b) => Number(b.charged) - Number(a.charged));
      const cat = spend(byCategory);
      draw("c-category", {type: "doughnut", data: {labels: cat.map((r) => r.group || gettext("service")), datasets: [{data: cat.map((r) => Number(r.charged) - Number(r.refunded)), backgroundColor: PALETTE}]},
        options: {responsive: true, maintainAspectRatio: false, plugins: {legend: {position: "right"}}}});
      const cty = spend(byCountry).slice(0, 12);
      draw("c-country", {type: "bar", data: {labels: cty.map((r) => r.group || "?"), datasets: [{label: gettext("Spent"), data: cty.map((r) => Number(r.charged) - Number(r.refunded)), backgroundColor: PALETTE[0]}]},
        options: {indexAxis: "y", responsive: true, maintainAspectRatio: false, plugins: {legend: {display: false}}}});
      topTable("top-templates", byTemplate.filter((r) => r.group).sort((a, b) => b.sent - a.sent).slice(0, 8),
        (r) => [names.templates[r.group] || r.group, fmt.format(r.sent), pct(r.delivery_rate), pct(r.read_rate)]);
      topTable("top-campaigns", byCampaign.filter((r) => r.group).sort((a, b) => Number(b.charged) - Number(a.charged)).slice(0, 8),
        (r) => [names.campaigns[r.group] || r.group, fmt.format(r.messages), money(r.charged)]);
    } catch (e) {
      if (mine !== loading) return;
      err.textContent = words(gettext("Could not load the reports: %(error)s"), {error: e.message});
      err.hidden = false;
    } finally {
      if (mine === loading) root.removeAttribute("aria-busy");
    }
  }

  async function downloadCsv(event) {
    event.preventDefault();
    const a = event.currentTarget;
    const res = await fetch(url(a.dataset.report, a.dataset.group), {headers: {Accept: "text/csv"}, credentials: "same-origin"});
    const blob = await res.blob();
    const link = document.createElement("a");
    const r = range();
    link.href = URL.createObjectURL(blob);
    link.download = a.dataset.report + "-by-" + a.dataset.group + "-" + r.from + "-" + r.to + ".csv";
    document.body.append(link); link.click(); link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  function setDays(days) {
    const to = new Date($("to").value || root.dataset.to);
    const from = new Date(to.getTime() - (days - 1) * 86400000);
    $("from").value = from.toISOString().slice(0, 10);
    for (const b of document.querySelectorAll(".presets button")) b.classList.toggle("active", Number(b.dataset.days) === days);
    load();
  }

  $("range").addEventListener("submit", (e) => {
    e.preventDefault();
    if ($("from").value > $("to").value) {
      $("range-error").textContent = gettext("The start date is after the end date.");
      $("range-error").hidden = false;
      return;
    }
    for (const b of document.querySelectorAll(".presets button")) b.classList.remove("active");
    load();
  });
  for (const b of document.querySelectorAll(".presets button")) b.addEventListener("click", () => setDays(Number(b.dataset.days)));
  for (const a of document.querySelectorAll("a.csv")) a.addEventListener("click", downloadCsv);
  load();
})();
