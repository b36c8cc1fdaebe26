// Campaign page: polls the progress JSON every few seconds and draws the bar, the numbers and a Chart.js chart.
(function () {
  "use strict";
  var panel = document.getElementById("campaign-panel");
  if (!panel) return;
  var POLL_MS = 3000;
  var FINAL = { completed: 1, canceled: 1 };
  var LABELS = [
    ["total", "Recipients"], ["pending", "Waiting"], ["queued", "Queued"], ["sent", "Sent"],
    ["delivered", "Delivered"], ["read", "Read"], ["failed", "Failed"], ["skipped_opted_out", "Skipped: opted out"],
    ["skipped_invalid", "Skipped: no phone"], ["skipped_missing_variable", "Skipped: missing data"],
    ["skipped_blocked", "Skipped: blocked"], ["deferred_tier_limit", "Held: daily limit"], ["expired", "Expired"], ["canceled", "Canceled"]
  ];
  var timer = null;
  var failures = 0;

  function fmt(n) { return Number(n || 0).toLocaleString(); }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function renderStats(stats) {
    var dl = document.getElementById("cmp-stats");
    dl.textContent = "";
    LABELS.forEach(function (pair) {
      var value = stats[pair[0]] || 0;
      if (!value && ["skipped_invalid", "skipped_missing_variable", "skipped_blocked", "deferred_tier_limit", "expired", "canceled"].indexOf(pair[0]) >= 0) return;
      var box = el("div");
      box.appendChild(el("dt", {}, pair[1]));
      box.appendChild(el("dd", {}, fmt(value)));
      dl.appendChild(box);
    });
  }

  function renderBar(stats, data) {
    var label = document.getElementById("cmp-bar-label");
    if (data.status === "draft") {
      label.textContent = "Draft: nothing is sent until you press Start. Run the preflight to see who would get it.";
      return;
    }
    if (data.status === "scheduled") {
      label.textContent = "Scheduled to start " + new Date(data.schedule_at).toLocaleString() + " (your time).";
      return;
    }
    var sendable = stats.total - stats.skipped_opted_out - stats.skipped_invalid - stats.skipped_missing_variable - (stats.skipped_blocked || 0);
    var denom = Math.max(sendable, 1);
    var done = stats.sent + stats.failed;
    var pct = function (n) { return Math.min(100, 100 * n / denom).toFixed(1) + "%"; };
    // Stacked: delivered inside sent; failures after the sent share.
    document.getElementById("cmp-bar-sent").style.width = pct(stats.sent);
    document.getElementById("cmp-bar-delivered").style.width = pct(stats.delivered);
    var failed = document.getElementById("cmp-bar-failed");
    failed.style.left = pct(stats.sent);
    failed.style.width = pct(stats.failed);
    var bar = document.getElementById("cmp-bar");
    var overall = sendable > 0 ? Math.round(100 * done / sendable) : 0;
    bar.setAttribute("aria-valuenow", String(overall));
    document.getElementById("cmp-bar-label").textContent = sendable > 0
      ? overall + "% done: " + fmt(stats.sent) + " sent (" + fmt(stats.delivered) + " delivered), " + fmt(stats.failed) +
        " failed, of " + fmt(sendable) + " to message"
      : (stats.total ? "Nobody left to message." : "Not launched yet: recipients are expanded when it starts.");
  }

  var chart = null;
  function renderChart(series) {
    // Chart.js (static/vendor/chartjs): delivered solid, sent dashed on top, so both stay visible when every
    // send is delivered at once. Updated in place on each poll (no animation, no flicker).
    var n = Math.max(series.sent.length, 1);
    var labels = [];
    var start = series.started_at ? new Date(series.started_at).getTime() : null;
    for (var i = 0; i < n; i++) {
      labels.push(start === null ? String(i) : new Date(start + i * series.bucket_seconds * 1000).toLocaleTimeString());
    }
    var datasets = [
      { label: "Delivered", data: series.delivered, borderColor: "#1a73e8", backgroundColor: "#1a73e8", borderWidth: 2, pointRadius: 0, tension: 0.2 },
      { label: "Sent", data: series.sent, borderColor: "#5f8fd9", backgroundColor: "#5f8fd9", borderWidth: 2, borderDash: [5, 4], pointRadius: 0, tension: 0.2 }
    ];
    if (chart) {
      chart.data.labels = labels;
      chart.data.datasets[0].data = series.delivered;
      chart.data.datasets[1].data = series.sent;
      chart.update("none");
    } else if (window.Chart) {
      chart = new window.Chart(document.getElementById("cmp-chart"), {
        type: "line", data: { labels: labels, datasets: datasets },
        options: { responsive: true, maintainAspectRatio: false, animation: false,
                   interaction: { mode: "index", intersect: false },
                   plugins: { legend: { display: false } },
                   scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { ticks: { maxTicksLimit: 8 } } } }
      });
    }
    var note = document.getElementById("cmp-chart-note");
    note.textContent = series.started_at
      ? "From " + new Date(series.started_at).toLocaleString() + ", one point per " + series.bucket_seconds + " s."
      : "";
  }

  function render(data) {
    var status = document.getElementById("cmp-status");
    if (status.getAttribute("data-status") !== data.status) {
      // Status changed under us (auto-pause, completion): reload so the buttons match.
      if (timer !== null) { window.location.reload(); return; }
    }
    var reason = document.getElementById("cmp-reason");
    reason.hidden = !data.pause_reason;
    reason.textContent = data.pause_reason || "";
    var launched = !!data.started_at;
    document.getElementById("cmp-stats").hidden = !launched;
    document.querySelector(".cmp-chart").hidden = !launched;
    document.getElementById("cmp-bar").hidden = !launched;
    renderStats(data.stats);
    renderBar(data.stats, data);
    if (launched) renderChart(data.series);
    document.getElementById("cmp-updated").textContent = FINAL[data.status]
      ? "Final figures." : "Updated " + new Date().toLocaleTimeString() + " · refreshes every " + POLL_MS / 1000 + " s";
    return !FINAL[data.status];
  }

  function poll() {
    fetch(panel.getAttribute("data-progress-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        failures = 0;
        var again = render(data);
        timer = again ? window.setTimeout(poll, POLL_MS) : null;
      })
      .catch(function (err) {
        failures += 1;
        document.getElementById("cmp-updated").textContent = "Could not refresh (" + err.message + "); retrying…";
        timer = window.setTimeout(poll, Math.min(POLL_MS * Math.pow(2, failures), 30000));
      });
  }

  function preflight() {
    var box = document.getElementById("cmp-preflight");
    var btn = document.getElementById("cmp-preflight-btn");
    btn.disabled = true;
    box.hidden = false;
    box.textContent = "Running the dry run…";
    fetch(panel.getAttribute("data-preflight-url"), {
      method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf(), Accept: "application/json" }
    })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (d) {
        box.textContent = "";
        box.appendChild(el("h3", {}, "Preflight (nothing was sent)"));
        var table = el("table");
        var rows = [
          ["Audience now", fmt(d.audience_size)],
          ["Would receive a message", fmt(d.recipients)],
          ["Skipped: opted out", fmt(d.skipped.opted_out)],
          ["Skipped: invalid or missing number", fmt(d.skipped.invalid_number)],
          ["Skipped: missing variable data", fmt(d.skipped.missing_variable)],
          ["Skipped: blocked", fmt(d.skipped.blocked)],
          ["Over the daily tier limit (" + d.messaging_tier + ")", fmt(d.skipped.over_tier_limit)],
          ["Duplicates in the uploaded list", fmt(d.skipped.duplicate)],
          ["Already handled by this campaign", fmt(d.skipped.already_handled)],
          ["Estimated cost", d.estimated_cost + " " + d.currency],
          ["Available in the wallet", d.available === undefined ? "—" : d.available + " " + d.currency],
          ["Estimated time at " + fmt(d.throughput_mps) + " msg/s", d.estimated_seconds === null ? "—" : humanSeconds(d.estimated_seconds)]
        ];
        rows.forEach(function (r) {
          var tr = el("tr");
          tr.appendChild(el("td", {}, r[0]));
          tr.appendChild(el("td", {}, r[1]));
          table.appendChild(tr);
        });
        box.appendChild(table);
        (d.notes || []).forEach(function (n) { box.appendChild(el("p", { "class": "cmp-muted" }, n)); });
      })
      .catch(function (err) { box.textContent = "Preflight failed: " + err.message; })
      .then(function () { btn.disabled = false; });
  }

  function humanSeconds(s) {
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  }

  document.getElementById("cmp-preflight-btn").addEventListener("click", preflight);
  poll();
})();
