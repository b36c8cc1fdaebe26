// Campaign page: polls the progress JSON every few seconds and draws the bar, the numbers and a Chart.js chart.
(function () {
  "use strict";
  var panel = document.getElementById("campaign-panel");
  if (!panel) return;
  var POLL_MS = 3000;
  var FINAL = { completed: 1, canceled: 1 };
  // Words from Django's JavaScript catalog (/jsi18n/, loaded by the change form before this file).
  var LABELS = [
    ["total", gettext("Recipients")], ["pending", gettext("Waiting")], ["queued", gettext("Queued")], ["sent", gettext("Sent")],
    ["delivered", gettext("Delivered")], ["read", gettext("Read")], ["failed", gettext("Failed")], ["skipped_opted_out", gettext("Skipped: opted out")],
    ["skipped_invalid", gettext("Skipped: no phone")], ["skipped_missing_variable", gettext("Skipped: missing data")],
    ["skipped_blocked", gettext("Skipped: blocked")],
    ["deferred_tier_limit", gettext("Held: daily limit")], ["expired", gettext("Expired")], ["canceled", gettext("Canceled")]
  ];
  function words(text, values) { return interpolate(text, values, true); }
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
      label.textContent = gettext("Draft: nothing is sent until you press Start. Run the preflight to see who would get it.");
      return;
    }
    if (data.status === "scheduled") {
      label.textContent = words(gettext("Scheduled to start %(when)s (your time)."), { when: new Date(data.schedule_at).toLocaleString() });
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
      ? words(gettext("%(pct)s done: %(sent)s sent (%(delivered)s delivered), %(failed)s failed, of %(total)s to message"),
              { pct: overall + "%", sent: fmt(stats.sent), delivered: fmt(stats.delivered), failed: fmt(stats.failed), total: fmt(sendable) })
      : (stats.total ? gettext("Nobody left to message.") : gettext("Not launched yet: recipients are expanded when it starts."));
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
      { label: gettext("Delivered"), data: series.delivered, borderColor: "#1a73e8", backgroundColor: "#1a73e8", borderWidth: 2, pointRadius: 0, tension: 0.2 },
      { label: gettext("Sent"), data: series.sent, borderColor: "#5f8fd9", backgroundColor: "#5f8fd9", borderWidth: 2, borderDash: [5, 4], pointRadius: 0, tension: 0.2 }
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
      ? words(gettext("From %(when)s, one point per %(seconds)s s."), { when: new Date(series.started_at).toLocaleString(), seconds: series.bucket_seconds })
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
      ? gettext("Final figures.") : words(gettext("Updated %(when)s · refreshes every %(seconds)s s"), { when: new Date().toLocaleTimeString(), seconds: POLL_MS / 1000 });
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
        document.getElementById("cmp-updated").textContent = words(gettext("Could not refresh (%(error)s); retrying…"), { error: err.message });
        timer = window.setTimeout(poll, Math.min(POLL_MS * Math.pow(2, failures), 30000));
      });
  }

  function preflight() {
    var box = document.getElementById("cmp-preflight");
    var btn = document.getElementById("cmp-preflight-btn");
    btn.disabled = true;
    box.hidden = false;
    box.textContent = gettext("Running the dry run…");
    fetch(panel.getAttribute("data-preflight-url"), {
      method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf(), Accept: "application/json" }
    })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (d) {
        box.textContent = "";
        box.appendChild(el("h3", {}, gettext("Preflight (nothing was sent)")));
        var table = el("table");
        var rows = [
          [gettext("Audience now"), fmt(d.audience_size)],
          [gettext("Would receive a message"), fmt(d.recipients)],
          [gettext("Skipped: opted out"), fmt(d.skipped.opted_out)],
          [gettext("Skipped: invalid or missing number"), fmt(d.skipped.invalid_number)],
          [gettext("Skipped: missing variable data"), fmt(d.skipped.missing_variable)],
          [gettext("Skipped: blocked"), fmt(d.skipped.blocked)],
          [words(gettext("Over the daily tier limit (%(tier)s)"), { tier: d.messaging_tier }), fmt(d.skipped.over_tier_limit)],
          [gettext("Duplicates in the uploaded list"), fmt(d.skipped.duplicate)],
          [gettext("Already handled by this campaign"), fmt(d.skipped.already_handled)],
          [gettext("Estimated cost"), d.estimated_cost + " " + d.currency],
          [gettext("Available in the wallet"), d.available === undefined ? "—" : d.available + " " + d.currency],
          [words(gettext("Estimated time at %(mps)s msg/s"), { mps: fmt(d.throughput_mps) }), d.estimated_seconds === null ? "—" : humanSeconds(d.estimated_seconds)]
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
      .catch(function (err) { box.textContent = words(gettext("Preflight failed: %(error)s"), { error: err.message }); })
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
