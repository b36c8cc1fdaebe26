// The template builder: turns the form into Meta's components JSON, draws a WhatsApp-style preview, and asks
// the server (the API's own validator) which of Meta's rules the draft breaks, as the user types.
(function () {
  const form = document.getElementById("tpl-form");
  if (!form) return;
  const $ = (id) => document.getElementById(id);
  const t = $("tpl-i18n").dataset;
  const csrf = document.querySelector("meta[name=csrf-token]").content;
  const VALUE_FIELD = { URL: "url", PHONE_NUMBER: "phone_number", COPY_CODE: "example", OTP: "otp_type", FLOW: "flow_id" };
  const NO_LABEL = ["COPY_CODE", "OTP"];
  const buttons = [];

  function params(text, named) {
    const re = /\{\{\s*([^{}]*?)\s*\}\}/g; const out = []; let m;
    while ((m = re.exec(text || ""))) if (!out.includes(m[1])) out.push(m[1]);
    return named ? out : out.sort((a, b) => Number(a) - Number(b));
  }
  function exampleInputs(container, names, prefix) {
    const old = {};
    container.querySelectorAll("input").forEach((i) => { old[i.dataset.name] = i.value; });
    container.replaceChildren(...names.map((n) => {
      const wrap = document.createElement("div");
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "text"; input.dataset.name = n; input.id = prefix + "-ex-" + n; input.value = old[n] || "";
      label.htmlFor = input.id; label.textContent = t.example + " {{" + n + "}}";
      input.addEventListener("input", changed);
      wrap.append(label, input); return wrap;
    }));
  }
  function examples(container) {
    return Array.from(container.querySelectorAll("input")).map((i) => [i.dataset.name, i.value]);
  }
  function drawButtons() {
    $("tpl-buttons").replaceChildren(...buttons.map((b, idx) => {
      const row = document.createElement("div"); row.className = "button-row";
      const kind = document.createElement("span"); kind.textContent = b.type; kind.className = "badge";
      const label = document.createElement("input"); label.placeholder = t.label; label.value = b.text || "";
      label.setAttribute("aria-label", t.label + " " + (idx + 1)); label.hidden = NO_LABEL.includes(b.type);
      label.addEventListener("input", () => { b.text = label.value; changed(); });
      const value = document.createElement("input"); value.placeholder = VALUE_FIELD[b.type] || "";
      value.setAttribute("aria-label", t.value + " " + (idx + 1)); value.value = b.value || "";
      value.hidden = !VALUE_FIELD[b.type];
      value.addEventListener("input", () => { b.value = value.value; changed(); });
      const rm = document.createElement("button"); rm.type = "button"; rm.className = "btn small"; rm.textContent = t.remove;
      rm.addEventListener("click", () => { buttons.splice(idx, 1); drawButtons(); changed(); });
      row.append(kind, label, value, rm); return row;
    }));
  }
  function build() {
    const named = $("tpl-format").value === "named";
    const components = [];
    const hf = $("tpl-header-format").value;
    if (hf) {
      const h = { type: "HEADER", format: hf };
      if (hf === "TEXT") {
        h.text = $("tpl-header-text").value;
        const ex = examples($("tpl-header-examples"));
        if (ex.length) h.example = named ? { header_text_named_params: ex.map(([n, v]) => ({ param_name: n, example: v })) }
          : { header_text: ex.map(([, v]) => v) };
      } else if (hf !== "LOCATION") {
        h.example = { header_handle: [$("tpl-header-handle").value].filter(Boolean) };
      }
      components.push(h);
    }
    const body = { type: "BODY", text: $("tpl-body").value };
    const bex = examples($("tpl-body-examples"));
    if (bex.length) body.example = named ? { body_text_named_params: bex.map(([n, v]) => ({ param_name: n, example: v })) }
      : { body_text: [bex.map(([, v]) => v)] };
    components.push(body);
    if ($("tpl-footer").value) components.push({ type: "FOOTER", text: $("tpl-footer").value });
    if (buttons.length) {
      components.push({ type: "BUTTONS", buttons: buttons.map((b) => {
        const out = { type: b.type };
        if (!NO_LABEL.includes(b.type)) out.text = b.text || "";
        const field = VALUE_FIELD[b.type];
        if (field && b.value) out[field] = b.type === "COPY_CODE" ? [b.value] : b.value;
        if (b.type === "URL" && /\{\{/.test(b.value || "")) out.example = [(b.value || "").replace(/\{\{[^}]*\}\}/, "example")];
        return out;
      }) });
    }
    return { name: $("tpl-name").value.trim(), language: $("tpl-language").value, category: $("tpl-category").value,
             parameter_format: named ? "named" : "positional", components };
  }
  function fill(text, ex) {
    let out = text || "";
    ex.forEach(([n, v]) => { out = out.split("{{" + n + "}}").join(v || "{{" + n + "}}"); });
    return out;
  }
  function preview(data) {
    const hf = $("tpl-header-format").value;
    $("pv-media").hidden = !hf || hf === "TEXT";
    $("pv-media").textContent = t.media + ": " + hf;
    $("pv-header").textContent = hf === "TEXT" ? fill($("tpl-header-text").value, examples($("tpl-header-examples"))) : "";
    $("pv-body").textContent = fill($("tpl-body").value, examples($("tpl-body-examples")));
    $("pv-footer").textContent = $("tpl-footer").value;
    $("pv-buttons").replaceChildren(...buttons.map((b) => {
      const d = document.createElement("div"); d.textContent = b.text || b.type.replace("_", " ").toLowerCase(); return d;
    }));
    $("tpl-body-count").textContent = $("tpl-body").value.length;
    $("pv-bubble").classList.toggle("empty", !hf && !$("tpl-body").value && !$("tpl-footer").value);
  }
  let timer = null; let seq = 0;
  async function check() {
    const mine = ++seq;
    const data = build();
    let answer;
    try {
      const r = await fetch("/templates/validate", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf }, body: JSON.stringify(data) });
      answer = await r.json();
    } catch (e) { return; }
    if (mine !== seq) return;
    const box = $("tpl-rules");
    if (!answer.errors.length) {
      const p = document.createElement("p"); p.className = "badge ok"; p.textContent = t.ok; box.replaceChildren(p); return;
    }
    const ul = document.createElement("ul"); ul.className = "errors";
    answer.errors.forEach((e) => { const li = document.createElement("li"); li.textContent = (e.field ? e.field + ": " : "") + e.message; ul.append(li); });
    box.replaceChildren(ul);
  }
  function changed() {
    const named = $("tpl-format").value === "named";
    const hf = $("tpl-header-format").value;
    $("tpl-header-text").hidden = hf !== "TEXT";
    $("tpl-header-handle").hidden = !hf || hf === "TEXT" || hf === "LOCATION";
    exampleInputs($("tpl-header-examples"), hf === "TEXT" ? params($("tpl-header-text").value, named) : [], "h");
    exampleInputs($("tpl-body-examples"), params($("tpl-body").value, named), "b");
    preview(build());
    clearTimeout(timer); timer = setTimeout(check, 250);
  }
  form.addEventListener("input", (e) => { if (!e.target.closest("#tpl-header-examples, #tpl-body-examples, #tpl-buttons")) changed(); });
  form.addEventListener("change", (e) => { if (e.target.tagName === "SELECT" && e.target.id !== "tpl-add-type") changed(); });
  $("tpl-add-button").addEventListener("click", () => {
    const type = $("tpl-add-type").value;
    buttons.push({ type, text: "", value: type === "OTP" ? "COPY_CODE" : "" }); drawButtons(); changed();
  });
  form.addEventListener("submit", () => { $("tpl-payload").value = JSON.stringify(build()); });
  // Back from a refused submit: the draft comes back as it was sent.
  const initial = JSON.parse($("tpl-initial").textContent || "{}");
  if (initial && initial.components) {
    $("tpl-name").value = initial.name || ""; $("tpl-category").value = initial.category || "MARKETING";
    $("tpl-language").value = initial.language || "en";
    $("tpl-format").value = (initial.parameter_format || "positional").toLowerCase();
    initial.components.forEach((c) => {
      if (c.type === "HEADER") { $("tpl-header-format").value = c.format || ""; $("tpl-header-text").value = c.text || ""; }
      if (c.type === "BODY") $("tpl-body").value = c.text || "";
      if (c.type === "FOOTER") $("tpl-footer").value = c.text || "";
      if (c.type === "BUTTONS") (c.buttons || []).forEach((b) => buttons.push({ type: b.type, text: b.text || "",
        value: b.url || b.phone_number || b.otp_type || b.flow_id || (Array.isArray(b.example) ? b.example[0] : "") }));
    });
    drawButtons();
  }
  changed();
})();
