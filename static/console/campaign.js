// The live campaign page: polls the campaign's figures, moves the bar and redraws the chart (Chart.js).
(function () {
  const root = document.getElementById("campaign");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const t = $("cmp-i18n").dataset;
  let chart = null;
  function draw(series) {
    const labels = series.sent.map((_, i) => {
      const d = new Date(Date.parse(series.started_at) + i * series.bucket_seconds * 1000);
      return d.toISOString().slice(11, 19);
    });
    if (!window.Chart) return;
    if (!chart) {
      chart = new window.Chart($("cmp-chart"), {
        type: "line",
        data: { labels, datasets: [
          { label: t.sent, data: series.sent, borderColor: "#0f766e", backgroundColor: "rgba(15,118,110,.15)", fill: true, tension: .25 },
          { label: t.delivered, data: series.delivered, borderColor: "#1570ef", tension: .25 } ] },
        options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
      });
    } else {
      chart.data.labels = labels; chart.data.datasets[0].data = series.sent; chart.data.datasets[1].data = series.delivered; chart.update();
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
