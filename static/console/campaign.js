// The live campaign page: polls the campaign's figures, moves the bar and redraws the chart (Chart.js): running
// totals of sent and delivered, so the lines climb to the figures above them (per-interval counts fell back to 0
// at the end of a campaign, which read like a drop).
(function () {
  const root = document.getElementById("campaign");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const t = $("cmp-i18n").dataset;
  let chart = null;
  function runningTotal(counts) { let sum = 0; return counts.map((n) => (sum += n)); }
  function draw(series) {
    if (!window.Chart || !$("cmp-chart")) return;  // no chart before the campaign starts
    const sent = runningTotal(series.sent), delivered = runningTotal(series.delivered);
    const labels = series.sent.map((_, i) => {
      const d = new Date(Date.parse(series.started_at) + i * series.bucket_seconds * 1000);
      return d.toISOString().slice(11, 19);
    });
    if (!chart) {
      chart = new window.Chart($("cmp-chart"), {
        type: "line",
        data: { labels, datasets: [
          { label: t.sent, data: sent, borderColor: "#0f766e", backgroundColor: "rgba(15,118,110,.15)", fill: true, tension: .25 },
          { label: t.delivered, data: delivered, borderColor: "#1570ef", tension: .25 } ] },
        options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
      });
    } else {
      chart.data.labels = labels; chart.data.datasets[0].data = sent; chart.data.datasets[1].data = delivered; chart.update();
    }
  }
  async function poll() {
    let data;
    try {
      const r = await fetch(root.dataset.url, { credentials: "same-origin" });
      data = await r.json();
    } catch (e) { setTimeout(poll, 3000); return; }
    $("cmp-bar").style.width = data.progress + "%";
    $("cmp-progress").textContent = data.progress + "%";
    ["total", "sent", "delivered", "read", "failed"].forEach((k) => { $("k-" + k).textContent = data.stats[k]; });
    $("k-deferred").textContent = data.stats.deferred_tier_limit;
    $("cmp-holds").replaceChildren(...data.holds.map((h) => { const p = document.createElement("p"); p.className = "secret-once"; p.textContent = h; return p; }));
    draw(data.series);
    if (data.status !== root.dataset.status) {  // the actions that fit the new state come from the server
      window.location.reload();
      return;
    }
    if (data.status === "running" || data.status === "scheduled" || data.status === "paused") setTimeout(poll, 1500);
  }
  poll();
})();
