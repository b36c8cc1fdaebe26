// The campaign wizard and the audience form: shows the part of the audience step that is chosen, the live
// size of a filter, the template's preview and one row per template variable (contact field + default).
(function () {
  const $ = (id) => document.getElementById(id);
  // live size of the filter
  const size = $("f-size");
  if (size) {
    let timer = null;
    const ask = async () => {
      const q = new URLSearchParams({ f_tags: $("f-tags").value, f_opted_in: $("f-opted").value, f_field: $("f-field").value });
      try {
        const r = await fetch("/campaigns/audiences/size?" + q, { credentials: "same-origin" });
        size.textContent = (await r.json()).size;
      } catch (e) { size.textContent = "?"; }
    };
    ["f-tags", "f-opted", "f-field"].forEach((id) => $(id).addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(ask, 250); }));
    ask();
  }
  const wizard = $("wizard");
  if (!wizard) return;
  const t = $("wz-i18n").dataset;
  const templates = JSON.parse($("wz-templates").textContent);
  const fields = JSON.parse($("wz-fields").textContent);
  function modes() {
    const mode = wizard.querySelector("input[name=audience_mode]:checked").value;
    wizard.querySelectorAll("[data-mode]").forEach((el) => { el.hidden = !el.dataset.mode.split(" ").includes(mode); });
  }
  wizard.querySelectorAll("input[name=audience_mode]").forEach((r) => r.addEventListener("change", modes));
  modes();
  function option(value, text, selected) { const o = document.createElement("option"); o.value = value; o.textContent = text; o.selected = !!selected; return o; }
  function drawVars() {
    const tpl = templates.find((x) => x.id === $("wz-template").value);
    const box = $("wz-vars");
    $("wz-preview").textContent = tpl ? tpl.body : "";
    $("wz-phone").hidden = !tpl;
    if (!tpl) { box.replaceChildren(); return; }
    if (!tpl.variables.length) { const p = document.createElement("p"); p.className = "muted"; p.textContent = t.none; box.replaceChildren(p); return; }
    box.replaceChildren(...tpl.variables.map((key, i) => {
      const row = document.createElement("div"); row.className = "grid2";
      const a = document.createElement("div"); const b = document.createElement("div");
      const la = document.createElement("label"); la.htmlFor = "var-" + key + "-field"; la.textContent = t.value + " {{" + key + "}}";
      const sel = document.createElement("select"); sel.id = "var-" + key + "-field"; sel.name = "var_" + key + "_field";
      fields.forEach((f) => sel.append(option(f, "contact." + f, i === 0 && f === "first_name")));
      sel.append(option("__text__", t.text));
      const lb = document.createElement("label"); lb.htmlFor = "var-" + key + "-default"; lb.textContent = t.default;
      const def = document.createElement("input"); def.type = "text"; def.id = "var-" + key + "-default"; def.name = "var_" + key + "_default";
      a.append(la, sel); b.append(lb, def); row.append(a, b); return row;
    }));
  }
  $("wz-template").addEventListener("change", drawVars);
  drawVars();
})();
