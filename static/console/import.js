// Polls the import's progress and fills the bar, the counts and the rejected rows until it is done.
(function () {
  const root = document.getElementById("import");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }
  async function poll() {
    let data;
    try {
      const r = await fetch(root.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      data = await r.json();
    } catch (e) { setTimeout(poll, 2000); return; }
    $("imp-bar").setAttribute("aria-valuenow", data.progress_percent);
    $("imp-bar").firstElementChild.style.width = data.progress_percent + "%";
    $("imp-status").textContent = data.status + " · " + data.progress_percent + "%";
    $("imp-rows").textContent = data.rows; $("imp-created").textContent = data.created;
    $("imp-updated").textContent = data.updated; $("imp-rejected").textContent = data.rejected;
    $("imp-error").textContent = data.error || "";
    if (data.rejected_rows.length) {
      const body = $("imp-rejected-rows");
      body.replaceChildren(...data.rejected_rows.map((row) => {
        const tr = document.createElement("tr");
        tr.append(cell(row.row), cell(row.phone), cell(row.reason));
        return tr;
      }));
    }
    if (data.status === "pending" || data.status === "running") setTimeout(poll, 700);
  }
  poll();
})();
