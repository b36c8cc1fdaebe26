/* Reach operator inbox: vanilla JS, no build step.
 *
 * State comes from the HTTP API; changes come from the event stream (/ws/inbox/). Every event
 * carries its workspace sequence; we keep the last one applied and, on (re)connect, ask the server
 * for everything after it. Applying an event means re-reading the affected conversation (and, if
 * open, its newest messages) and upserting by id, so applying one twice is harmless. */
(function () {
  "use strict";

  const boot = JSON.parse(document.getElementById("inbox-bootstrap").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const API = "/api/v1";
  // Words come from Django's JavaScript catalog (/jsi18n/, loaded before this file): gettext, ngettext, interpolate.
  const fmt = (text, values) => interpolate(text, values, true);

  const S = {
    me: boot.me,
    channels: new Map((boot.channels || []).map((ch) => [ch.kind, ch])), // kind -> {label, has_window}
    agents: boot.agents,
    canned: boot.canned,
    lastSeq: boot.sequence,
    filters: { state: "open", assignee: "all", channel: "", q: "", label: "", team: "", sort: "newest", needsReply: false },
    labels: boot.labels || [],
    teams: boot.teams || [],
    views: boot.views || [],
    presence: boot.presence || [],
    selected: new Set(),   // conversation ids picked for a bulk action
    peers: new Map(),      // user id -> {name, conversation_id, replying, at}
    attachment: null,      // {file, kind, media, xhr}
    pinned: true,
    convs: new Map(),      // id -> conversation
    order: [],             // ids in list order
    nextCursor: null,
    loadingMore: false,
    current: null,         // open conversation id
    messages: new Map(),   // id -> message (current conversation)
    notes: new Map(),
    oldestId: null,
    hasMore: false,
    loadingOlder: false,
    mode: "reply",
    composeKey: null,      // Idempotency-Key of the message being composed
    sending: false,
    templates: [],
    ws: null,
    wsHeld: false,         // test hook: keep the socket down
    retries: 0,
  };

  // ---------------------------------------------------------------- utilities
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function newKey() {
    return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
  }
  async function api(method, path, body, extraHeaders) {
    const headers = { "Accept": "application/json", "X-CSRFToken": csrf };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    Object.assign(headers, extraHeaders || {});
    const res = await fetch(API + path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
    let data = null;
    try { data = res.status === 204 ? null : await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const err = new Error((data && data.error && data.error.message) || ("HTTP " + res.status));
      err.code = data && data.error && data.error.code;
      err.status = res.status;
      throw err;
    }
    return data;
  }
  function initials(name) {
    const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
    if (!parts.length) return "?";
    if (parts[0].startsWith("+")) return "#";
    return (parts[0][0] + (parts[1] ? parts[1][0] : "")).toUpperCase();
  }
  // A contact may have no phone (Meta's business-scoped user id and a username instead).
  function contactName(c) { return (c && (c.name || c.phone || (c.username && "@" + c.username) || c.wa_id || c.bsuid || c.email)) || gettext("Unknown"); }
  function contactAddress(c) { return (c && (c.phone || (c.username && "@" + c.username) || c.bsuid || c.wa_id || c.email)) || ""; }
  function fmtTime(iso) {
    if (!iso) return "";
    const d = new Date(iso), now = new Date();
    if (d.toDateString() === now.toDateString()) return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const y = new Date(now); y.setDate(now.getDate() - 1);
    if (d.toDateString() === y.toDateString()) return gettext("Yesterday");
    if (now - d < 6 * 864e5) return d.toLocaleDateString([], { weekday: "short" });
    return d.toLocaleDateString([], { day: "numeric", month: "short" });
  }
  function clock(iso) { return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : ""; }
  function dayLabel(iso) {
    const d = new Date(iso), now = new Date();
    if (d.toDateString() === now.toDateString()) return gettext("Today");
    const y = new Date(now); y.setDate(now.getDate() - 1);
    if (d.toDateString() === y.toDateString()) return gettext("Yesterday");
    return d.toLocaleDateString([], { weekday: "long", day: "numeric", month: "long", year: d.getFullYear() === now.getFullYear() ? undefined : "numeric" });
  }
  // Channels come from the server, one entry each (apps/conversations/channels.py); the icon is its symbol.
  function channelOf(conv) { return S.channels.get(conv.channel_kind) || { kind: conv.channel_kind, label: conv.channel_kind || "", has_window: true }; }
  function channelIcon(conv) {
    const ch = channelOf(conv);
    return `<svg class="ch-icon ch-${esc(ch.kind)}" role="img" aria-label="${esc(ch.label)}"><title>${esc(ch.label)}</title><use href="#ch-${esc(ch.kind)}"></use></svg>`;
  }
  function replyUntil(conv) { return conv.agent_reply_expires_at || conv.window_expires_at; }
  function windowBadge(conv) {
    if (!channelOf(conv).has_window) return { cls: "win-none", text: "", title: "" };
    if (conv.agent_reply_expires_at && conv.window_expires_at !== conv.agent_reply_expires_at && !(conv.window_expires_at && new Date(conv.window_expires_at) > Date.now())) {
      const ms = new Date(conv.agent_reply_expires_at) - Date.now();
      if (ms > 0) { const d = Math.floor(ms / 864e5), h = Math.floor((ms % 864e5) / 36e5); return { cls: "win-low", text: d > 0 ? fmt(gettext("%(d)sd %(h)sh (agent)"), { d, h }) : fmt(gettext("%(h)sh (agent)"), { h }), title: fmt(gettext("Standard window closed: replies from the inbox go with the HUMAN_AGENT tag until %(when)s"), { when: new Date(conv.agent_reply_expires_at).toLocaleString() }) }; }
    }
    if (!conv.window_expires_at) return { cls: "win-closed", text: gettext("Window closed"), title: gettext("Outside the 24-hour window: templates only") };
    const ms = new Date(conv.window_expires_at) - Date.now();
    if (ms <= 0) return { cls: "win-closed", text: gettext("Window closed"), title: gettext("Outside the 24-hour window: templates only") };
    const h = Math.floor(ms / 36e5), m = Math.floor((ms % 36e5) / 6e4);
    const text = h > 0 ? fmt(gettext("%(h)sh %(m)sm left"), { h, m }) : fmt(gettext("%(m)sm left"), { m });
    return { cls: h < 2 ? "win-low" : "win-open", text, title: fmt(gettext("24-hour window open until %(when)s"), { when: new Date(conv.window_expires_at).toLocaleString() }) };
  }
  // A conversation state's name as people read it (the API's value stays in the class and data attributes).
  function stateName(state) {
    return ({ open: gettext("open"), pending: gettext("pending"), snoozed: gettext("snoozed"), resolved: gettext("resolved") })[state] || state;
  }
  function windowOpen(conv) { return !channelOf(conv).has_window || (!!replyUntil(conv) && new Date(replyUntil(conv)) > Date.now()); }
  function agentName(id) { const a = S.agents.find((x) => x.id === id); return a ? a.name : gettext("someone"); }

  // ---------------------------------------------------------------- conversation list
  function listParams(cursor) {
    const p = new URLSearchParams();
    if (S.filters.state) p.set("state", S.filters.state);
    if (S.filters.channel) p.set("channel_kind", S.filters.channel);
    if (S.filters.assignee === "mine") p.set("mine", "true");
    if (S.filters.assignee === "none") p.set("assigned_user_id", "none");
    if (S.filters.q) p.set("q", S.filters.q);
    if (S.filters.label) p.set("label", S.filters.label);
    if (S.filters.team) p.set("team_id", S.filters.team);
    if (S.filters.needsReply) p.set("needs_reply", "true");
    else if (S.filters.sort && S.filters.sort !== "newest") p.set("sort", S.filters.sort);
    if (cursor) p.set("cursor", cursor);
    p.set("limit", "25");
    return p.toString();
  }
  function matchesFilters(c) {
    if (S.filters.q) return S.order.includes(c.id); // search results are a snapshot
    if (S.filters.state && c.state !== S.filters.state) return false;
    if (S.filters.channel && c.channel_kind !== S.filters.channel) return false;
    if (S.filters.assignee === "mine" && c.assigned_user_id !== S.me.id) return false;
    if (S.filters.assignee === "none" && c.assigned_user_id) return false;
    if (S.filters.label && !(c.label_ids || []).includes(S.filters.label)) return false;
    if (S.filters.team && (S.filters.team === "none" ? c.team_id : c.team_id !== S.filters.team)) return false;
    if (S.filters.needsReply && !c.waiting_since) return false;
    return true;
  }
  function sortMode() { return S.filters.needsReply ? "oldest_waiting" : (S.filters.sort || "newest"); }
  function activity(c) { return c.last_message_at || c.created_at || ""; }
  function sortOrder() {
    const mode = sortMode();
    S.order.sort((a, b) => {
      const ca = S.convs.get(a), cb = S.convs.get(b);
      let d = 0;
      if (mode === "oldest_waiting") d = (ca.last_inbound_at || "9").localeCompare(cb.last_inbound_at || "9");
      else if (mode === "unread") d = (cb.unread_count || 0) - (ca.unread_count || 0);
      if (d === 0) d = activity(cb).localeCompare(activity(ca));
      return d !== 0 ? d : (b > a ? 1 : b < a ? -1 : 0);
    });
  }
  let listSeq = 0; // bumped by every list reload: answers of older requests are dropped
  async function loadList(reset) {
    const seq = reset ? ++listSeq : listSeq;
    const cursor = reset ? null : S.nextCursor;
    const q = listParams(cursor);
    const data = await api("GET", "/conversations?" + q);
    // Requests are not answered in order: a slow answer for the filter before (say All) must not
    // overwrite the list of the one chosen since (Mine), nor a page of it be appended there.
    if (seq !== listSeq) return;
    if (reset) { S.order = []; }
    for (const c of data.data) {
      S.convs.set(c.id, c);
      if (!S.order.includes(c.id)) S.order.push(c.id);
    }
    S.nextCursor = data.next_cursor;
    renderList();
  }
  function upsertConversation(c) {
    S.convs.set(c.id, c);
    const inList = S.order.includes(c.id);
    if (matchesFilters(c)) {
      if (!inList) S.order.push(c.id);
      sortOrder();
    } else if (inList && c.id !== S.current) {
      S.order = S.order.filter((x) => x !== c.id);
    }
    renderList();
    if (c.id === S.current) renderHead();
    renderTitle();
  }
  function renderList() {
    const ul = $("conv-list");
    if (!S.order.length) {
      ul.innerHTML = `<li class="list-empty">${esc(gettext("No conversations here."))}</li>`;
    } else {
      ul.innerHTML = S.order.map((id) => {
        const c = S.convs.get(id), wb = windowBadge(c);
        const sel = id === S.current;
        const picked = S.selected.has(id);
        return `<li class="conv${sel ? " selected" : ""}${c.unread_count ? " unread" : ""}${picked ? " picked" : ""}" role="option" aria-selected="${sel}" data-id="${esc(id)}" id="conv-${esc(id)}">
          <label class="avatar" title="${esc(gettext("Select for a bulk action"))}"><input type="checkbox" class="pick" data-pick="${esc(id)}" ${picked ? "checked" : ""} aria-label="${esc(fmt(gettext("Select %(name)s"), { name: contactName(c.contact) }))}"><span aria-hidden="true">${picked ? "✓" : esc(initials(contactName(c.contact)))}</span></label>
          <span class="name">${channelIcon(c)}${esc(contactName(c.contact))}</span>
          <span class="time" title="${esc(c.last_message_at ? new Date(c.last_message_at).toLocaleString() : "")}">${esc(fmtTime(activity(c)))}</span>
          <span class="preview">${labelChips(c.label_ids)}${esc(c.last_message_preview || (c.last_message_at ? "" : gettext("No messages yet")))}</span>
          <span class="meta">${c.unread_count ? `<span class="unread-count" aria-label="${esc(fmt(gettext("%(n)s unread"), { n: c.unread_count }))}">${c.unread_count}</span>` : ""}</span>
          <span></span>
          <span class="assignee">${c.state !== "open" ? `<span class="pill state-${esc(c.state)}">${esc(stateName(c.state))}</span> ` : ""}${c.assigned_user ? "→ " + esc(c.assigned_user.name) : esc(gettext("Unassigned"))}</span>
          <span class="meta">${c.waiting_since && S.filters.needsReply ? `<span class="badge win-low" title="${esc(fmt(gettext("Waiting since %(when)s"), { when: new Date(c.waiting_since).toLocaleString() }))}">${esc(fmt(gettext("waiting %(time)s"), { time: waited(c.waiting_since) }))}</span>` : `<span class="badge ${wb.cls}" title="${esc(wb.title)}">${esc(wb.text)}</span>`}</span>
        </li>`;
      }).join("");
    }
    renderBulk();
    $("list-footer").textContent = S.nextCursor ? gettext("Scroll for more") : (S.order.length ? fmt(ngettext("%(n)s conversation", "%(n)s conversations", S.order.length), { n: S.order.length }) : "");
  }

  // ---------------------------------------------------------------- conversation pane
  function setPane(p) { $("inbox").dataset.pane = p; }
  async function openConversation(id) {
    if (!id) return;
    if (S.current !== id) setMode("reply"); // a note half-typed elsewhere never turns into a reply here
    S.current = id;
    S.pinned = true; // stay at the newest message until the reader scrolls up
    setPane("thread");
    if (S.attachment && S.attachment.conversation !== id) clearAttachment();
    toggleEmoji(false);
    setTimeout(() => announce(false), 0);
    S.messages = new Map(); S.notes = new Map(); S.oldestId = null; S.hasMore = false;
    $("empty-state").hidden = true; $("thread").hidden = false;
    $("msg-list").innerHTML = ""; $("older").textContent = "";
    resetComposer();
    renderList(); renderHead();
    const el = $("conv-" + id); if (el) el.scrollIntoView({ block: "nearest" });
    const results = await Promise.allSettled([refreshConversation(id, true), refreshMessages(true), loadNotes()]);
    if (results.some((r) => r.status === "rejected")) showError(gettext("Some of this conversation could not be loaded — it will refresh on the next update."));
    markRead(id);
  }
  async function refreshConversation(id, withContact) {
    const c = await api("GET", `/conversations/${encodeURIComponent(id)}${withContact ? "?expand=contact" : ""}`);
    if (withContact && c.contact_details) renderSidebar(c);
    delete c.contact_details;
    upsertConversation(c);
    return c;
  }
  async function markRead(id) {
    const c = S.convs.get(id);
    if (!c || !c.unread_count) return;
    try { const r = await api("POST", `/conversations/${encodeURIComponent(id)}/read`); upsertConversation(r); } catch (e) { /* best effort */ }
  }
  async function refreshMessages(scrollToEnd) {
    const id = S.current;
    const data = await api("GET", `/conversations/${encodeURIComponent(id)}/messages?limit=50`);
    if (id !== S.current) return;
    for (const m of data.data) S.messages.set(m.id, m);
    if (S.oldestId === null) { S.hasMore = data.has_more; S.oldestId = data.data.length ? data.data[data.data.length - 1].id : null; }
    if (scrollToEnd) S.pinned = true;
    renderMessages();
  }
  async function loadOlder() {
    if (!S.hasMore || S.loadingOlder || !S.oldestId) return;
    S.loadingOlder = true; $("older").textContent = gettext("Loading earlier messages…");
    const id = S.current, box = $("messages");
    try {
      const data = await api("GET", `/conversations/${encodeURIComponent(id)}/messages?limit=50&before_id=${encodeURIComponent(S.oldestId)}`);
      if (id !== S.current) return;
      const before = box.scrollHeight;
      for (const m of data.data) S.messages.set(m.id, m);
      S.hasMore = data.has_more;
      if (data.data.length) S.oldestId = data.data[data.data.length - 1].id;
      renderMessages();
      box.scrollTop += box.scrollHeight - before; // keep the reader's place
    } finally { S.loadingOlder = false; $("older").textContent = S.hasMore ? "" : gettext("Start of conversation"); }
  }
  async function loadNotes() {
    const id = S.current;
    const data = await api("GET", `/conversations/${encodeURIComponent(id)}/notes`);
    if (id !== S.current) return;
    for (const n of data.data) S.notes.set(n.id, n);
    renderMessages();
  }

  function renderHead() {
    const c = S.convs.get(S.current);
    if (!c) return;
    $("t-name").textContent = contactName(c.contact);
    $("t-channel").innerHTML = channelIcon(c); $("t-channel").title = channelOf(c).label;
    $("t-phone").textContent = c.contact && c.contact.name ? contactAddress(c.contact) : "";
    const wb = windowBadge(c);
    const w = $("t-window"); w.className = "badge " + wb.cls; w.textContent = wb.text; w.title = wb.title;
    const st = $("t-state"); st.className = "pill state-" + c.state; st.textContent = c.state === "snoozed" && c.snooze_until ? fmt(gettext("snoozed until %(when)s"), { when: new Date(c.snooze_until).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" }) }) : stateName(c.state);
    $("t-resolve").textContent = c.state === "resolved" ? gettext("Reopen") : gettext("Resolve");
    $("t-resolve").title = c.state === "resolved" ? gettext("Reopen (e)") : gettext("Resolve (e)");
    $("t-pending").hidden = c.state === "pending";
    const sel = $("t-assign");
    sel.innerHTML = `<option value="">${esc(gettext("Unassigned"))}</option>` + S.agents.map((a) => `<option value="${esc(a.id)}">${presenceDot(a.id)} ${esc(a.id === S.me.id ? fmt(gettext("%(name)s (me)"), { name: a.name }) : a.name)}</option>`).join("");
    sel.value = c.assigned_user_id || "";
    const team = $("t-team");
    team.innerHTML = `<option value="">${esc(gettext("No team"))}</option>` + S.teams.map((t) => `<option value="${esc(t.id)}">${esc(t.name)}</option>`).join("");
    team.value = c.team_id || "";
    $("t-labels").innerHTML = labelChips(c.label_ids);
    renderLabelPop();
    renderPeers();
    const open = windowOpen(c);
    const templated = c.channel_kind === "whatsapp"; // templates are WhatsApp's; other channels have none
    $("window-closed").hidden = open || S.mode === "note" || !templated;
    $("window-closed-social").hidden = open || S.mode === "note" || templated;
    $("open-picker-2").hidden = !templated;
    $("attach-btn").hidden = c.channel_kind === "email"; // email replies are text (no attachments from here)
    $("compose-box").hidden = !open && S.mode !== "note";
  }

  function ticks(m) {
    if (m.direction !== "outbound") return "";
    switch (m.status) {
      case "read": return `<span class="ticks read" aria-label="${esc(gettext("Read"))}" title="${esc(fmt(gettext("Read %(when)s"), { when: m.read_at ? new Date(m.read_at).toLocaleString() : "" }))}">✓✓</span>`;
      case "delivered": return `<span class="ticks" aria-label="${esc(gettext("Delivered"))}" title="${esc(gettext("Delivered"))}">✓✓</span>`;
      case "sent": return `<span class="ticks" aria-label="${esc(gettext("Sent"))}" title="${esc(gettext("Sent"))}">✓</span>`;
      case "failed": return `<span class="ticks" aria-label="${esc(gettext("Failed"))}" style="color:var(--danger)">!</span>`;
      case "scheduled": return `<span class="ticks pending" aria-label="${esc(gettext("Scheduled"))}" title="${esc(gettext("Scheduled"))}">⏲</span>`;
      case "canceled": return `<span class="ticks pending" aria-label="${esc(gettext("Canceled"))}">⨯</span>`;
      default: return `<span class="ticks pending" aria-label="${esc(gettext("Sending"))}" title="${esc(gettext("Queued"))}">◷</span>`;
    }
  }
  function mediaHtml(m) {
    const media = m.media, content = m.content || {};
    const caption = content.caption || "";
    if (!media) {
      if (["image", "video", "audio", "document", "sticker"].includes(m.type)) {
        return `<div class="doc" aria-label="${esc(m.type)}">📎 ${esc(m.type)}${content.filename ? " · " + esc(content.filename) : ""} <span class="muted">(${esc(gettext("loading…"))})</span></div>`;
      }
      return "";
    }
    const url = esc(media.url);
    if (m.type === "image" || m.type === "sticker") return `<a href="${url}" target="_blank" rel="noopener"><img class="media" src="${url}" alt="${esc(caption || m.type)}" loading="lazy"></a>`;
    if (m.type === "video") return `<video class="media" src="${url}" controls preload="metadata"></video>`;
    if (m.type === "audio") return `<audio src="${url}" controls preload="none"></audio>`;
    return `<a class="doc" href="${url}" target="_blank" rel="noopener">📄 ${esc(media.filename || content.filename || gettext("Document"))} <span class="muted">${media.size ? Math.ceil(media.size / 1024) + " KB" : ""}</span></a>`;
  }
  // An email: its subject, its HTML (sanitised by the server, and shown in a sandboxed frame that runs no
  // script and loads nothing), else its text; its attachments.
  function emailHtml(m) {
    const c = m.content || {};
    let html = c.subject ? `<div class="email-subject">${esc(c.subject)}</div>` : "";
    if (c.html) {
      const doc = `<!doctype html><meta charset="utf-8"><base target="_blank"><style>body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#101828;overflow-wrap:anywhere}</style>${c.html}`;
      html += `<iframe class="email-html" sandbox="allow-popups allow-popups-to-escape-sandbox" referrerpolicy="no-referrer" title="${esc(gettext("Email"))}" srcdoc="${esc(doc)}"></iframe>`;
    } else {
      html += `<span class="text">${esc(m.body || "")}</span>`;
    }
    const files = (c.attachments || []).filter((a) => a.media_id);
    if (files.length) html += `<div class="email-files">${files.map((a) => `<a class="doc" href="/api/v1/media/${encodeURIComponent(a.media_id)}/content" target="_blank" rel="noopener">📄 ${esc(a.filename)}</a>`).join("")}</div>`;
    return html;
  }
  function bodyHtml(m) {
    const c = m.content || {};
    if (m.channel === "email") return emailHtml(m);
    let html = "";
    if (m.type === "template") html += `<span class="tag-template">${esc(gettext("Template"))} · ${esc((c.name || ""))}</span>`;
    if (c.context && c.context.id) html += ""; // quoted messages show as plain replies
    if (c.referral) html += referralHtml(c.referral);
    if (c.flow_response) return html + flowHtml(c.flow_response);
    if (m.template_view) return html + templateCardHtml(m.template_view);
    html += mediaHtml(m);
    if (m.type === "location") {
      const lat = c.latitude, lng = c.longitude;
      const href = `https://www.openstreetmap.org/?mlat=${encodeURIComponent(lat)}&mlon=${encodeURIComponent(lng)}#map=16/${encodeURIComponent(lat)}/${encodeURIComponent(lng)}`;
      return html + `<a class="loc" href="${href}" target="_blank" rel="noopener">📍 ${esc(c.name || gettext("Location"))}${c.address ? "<br><span class='muted'>" + esc(c.address) + "</span>" : ""}<br><span class="muted">${esc(lat)}, ${esc(lng)}</span></a>`;
    }
    if (m.type === "interactive" && m.direction === "inbound") {
      const r = c.button_reply || c.list_reply || (c.interactive || {}).button_reply || (c.interactive || {}).list_reply || {};
      return html + `<span class="reply-chip">↩ ${esc(r.title || m.body || gettext("Reply"))}</span>${r.description ? "<br><span class='muted'>" + esc(r.description) + "</span>" : ""}`;
    }
    if (m.type === "button") return html + `<span class="reply-chip">↩ ${esc((c.text || m.body || gettext("Button")))}</span>`;
    if (m.type === "reaction") return html + `<span title="${esc(gettext("Reaction"))}">${esc(c.emoji || m.body || "")}</span> <span class="muted">${esc(gettext("reaction"))}</span>`;
    let text = m.body;
    if (!text && ["image", "video", "audio", "document", "sticker"].includes(m.type)) text = caption(m);
    html += `<span class="text">${esc(text || (html ? "" : "[" + m.type + "]"))}</span>`;
    if (m.type === "interactive" && m.direction === "outbound") {
      const opts = (c.buttons || []).map((b) => b.title).concat(c.button ? [c.button] : []);
      if (opts.length) html += `<div class="interactive-opts">${opts.map((t) => `<span>${esc(t)}</span>`).join("")}</div>`;
    }
    return html;
  }
  // A sent template drawn as the customer sees it: header media, offer strip, body, footer, buttons with
  // their codes and links, carousel cards (the server's template_view).
  function tplHeaderHtml(h) {
    if (!h) return "";
    if (h.format === "TEXT") return h.text ? `<div class="tpl-header-text">${esc(h.text)}</div>` : "";
    if (h.format === "IMAGE" && h.link) return `<img class="tpl-media" src="${esc(h.link)}" alt="${esc(gettext("Header image"))}" loading="lazy" referrerpolicy="no-referrer">`;
    const label = { IMAGE: gettext("Image"), VIDEO: gettext("Video"), GIF: "GIF", DOCUMENT: gettext("Document"), LOCATION: gettext("Location") }[h.format] || h.format;
    return `<div class="tpl-media tpl-media-box" title="${esc(h.link || "")}">${esc(label)}${h.filename ? " · " + esc(h.filename) : ""}</div>`;
  }
  function tplButtonHtml(b) {
    if (b.type === "COPY_CODE" || b.type === "OTP") {
      return `<button type="button" class="tpl-btn tpl-copy" data-code="${esc(b.code || "")}" title="${esc(fmt(gettext("Copies %(code)s"), { code: b.code || "" }))}">${esc(b.text)}${b.code ? ` <code>${esc(b.code)}</code>` : ""}</button>`;
    }
    if (b.type === "URL") return `<a class="tpl-btn" href="${esc(b.url || "#")}" target="_blank" rel="noopener" title="${esc(b.url || "")}">↗ ${esc(b.text)}</a>`;
    if (b.type === "PHONE_NUMBER") return `<span class="tpl-btn" title="${esc(b.phone_number || "")}">☎ ${esc(b.text)}</span>`;
    return `<span class="tpl-btn">↩ ${esc(b.text)}</span>`;
  }
  function tplButtonsHtml(list) {
    return list && list.length ? `<div class="tpl-buttons">${list.map(tplButtonHtml).join("")}</div>` : "";
  }
  function templateCardHtml(v) {
    let html = `<div class="tpl-card">${tplHeaderHtml(v.header)}`;
    if (v.offer) {
      const ends = v.offer.expires_at_ms ? new Date(v.offer.expires_at_ms).toLocaleString() : "";
      html += `<div class="tpl-offer"><strong>${esc(v.offer.text)}</strong>${ends ? `<br><span class="muted">${esc(fmt(gettext("Offer ends %(when)s"), { when: ends }))}</span>` : ""}</div>`;
    }
    if (v.body) html += `<div class="text">${esc(v.body)}</div>`;
    if (v.footer) html += `<div class="tpl-footer muted">${esc(v.footer)}</div>`;
    html += tplButtonsHtml(v.buttons) + "</div>";
    if (v.cards && v.cards.length) {
      html += `<div class="tpl-cards" aria-label="${esc(gettext("Carousel"))}">${v.cards.map((card) => `<div class="tpl-card tpl-cell">${tplHeaderHtml(card.header)}${card.body ? `<div class="text">${esc(card.body)}</div>` : ""}${tplButtonsHtml(card.buttons)}</div>`).join("")}</div>`;
    }
    return html;
  }
  // A click-to-WhatsApp ad or post the customer came from (Meta's referral object).
  function referralHtml(r) {
    const from = r.source_type === "post" ? gettext("From a post:") : gettext("From an ad:");
    return `<div class="referral-chip" title="${esc(r.source_url || "")}">${esc(from)} <strong>${esc(r.headline || r.source_id || "")}</strong>${r.body ? `<br><span class="muted">${esc(r.body)}</span>` : ""}</div>`;
  }
  // A WhatsApp Flow's answers (nfm_reply), as a readable form.
  function flowHtml(f) {
    const rows = Object.entries(f.fields || {});
    return `<div class="flow-form"><div class="muted">${esc(gettext("Form answers"))}${f.name ? " · " + esc(f.name) : ""}</div>${rows.length ? `<dl class="kv">${rows.map(([k, v]) => `<dt>${esc(k.replace(/_/g, " "))}</dt><dd>${esc(typeof v === "object" ? JSON.stringify(v) : String(v))}</dd>`).join("")}</dl>` : `<span class="muted">(${esc(gettext("no answers"))})</span>`}</div>`;
  }
  function caption(m) { return (m.content && m.content.caption) || ""; }
  function sentByLabel(m) {
    if (m.direction === "inbound") return "";
    if (m.sent_by === "auto_reply") return gettext("Auto-reply");
    if (m.sent_by === "campaign") return gettext("Campaign");
    if (m.sent_by === "api") return "API";
    if (m.sent_by_user) return m.sent_by_user.id === S.me.id ? gettext("You") : m.sent_by_user.name;
    return "";
  }
  function renderMessages() {
    const items = [];
    for (const m of S.messages.values()) items.push({ kind: "m", at: m.created_at, id: m.id, m });
    for (const n of S.notes.values()) if (!S.oldestId || !S.hasMore || n.created_at >= (S.messages.get(S.oldestId) || {}).created_at) items.push({ kind: "n", at: n.created_at, id: n.id, n });
    items.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id < b.id ? -1 : 1));
    let lastDay = null;
    const out = [];
    for (const it of items) {
      const day = new Date(it.at).toDateString();
      if (day !== lastDay) { out.push(`<div class="day-sep" role="separator"><span>${esc(dayLabel(it.at))}</span></div>`); lastDay = day; }
      if (it.kind === "n") {
        const n = it.n;
        out.push(`<div class="row note" data-note-id="${esc(n.id)}"><div class="bubble note"><span class="note-label">${esc(gettext("Private note"))} · ${esc(n.author ? n.author.name : "")}</span>${esc(n.body)}<div class="foot">${esc(clock(n.created_at))}</div></div></div>`);
        continue;
      }
      const m = it.m, dir = m.direction === "inbound" ? "in" : "out";
      const failed = m.status === "failed";
      const who = sentByLabel(m);
      out.push(`<div class="row ${dir}" data-message-id="${esc(m.id)}" data-status="${esc(m.status)}"><div class="bubble ${dir}${failed ? " failed" : ""}">${bodyHtml(m)}<div class="foot">${who ? `<span class="who-sent">${esc(who)}</span>` : ""}<span>${esc(clock(m.created_at))}</span>${ticks(m)}</div>${failed ? failReason(m.error) : ""}</div></div>`);
    }
    $("msg-list").innerHTML = out.join("");
    if (!S.hasMore && S.messages.size) $("older").textContent = gettext("Start of conversation");
    // Images and videos change the height as they load: a reader at the newest message stays there.
    $("msg-list").querySelectorAll("img, video").forEach((el) => {
      el.addEventListener(el.tagName === "IMG" ? "load" : "loadedmetadata", stickToEnd, { once: true });
    });
    stickToEnd();
  }
  function stickToEnd() { if (S.pinned) { const box = $("messages"); box.scrollTop = box.scrollHeight; } }

  // The failure table's plain sentence and next action (error.description / error.action), the same as the API.
  function failReason(e) {
    if (!e) return `<div class="fail-reason">${esc(gettext("Not delivered"))}</div>`;
    return `<div class="fail-reason" data-reason="${esc(e.reason || "")}"><strong>${esc(gettext("Not delivered:"))}</strong> ${esc(e.description || e.message || e.code || gettext("unknown error"))}${e.action ? `<br><span class="fail-action">${esc(gettext("What to do:"))} ${esc(e.action)}</span>` : ""}</div>`;
  }

  function renderSidebar(c) {
    const d = c.contact_details;
    const cf = Object.entries(d.custom_fields || {});
    const consent = d.consent || {};
    $("side-pane").innerHTML = `
      ${c.referral ? `<div class="referral-side">${referralHtml(c.referral)}${c.free_entry_point_expires_at ? `<p class="muted">${esc(fmt(gettext("Free entry point window until %(when)s"), { when: new Date(c.free_entry_point_expires_at).toLocaleString() }))}</p>` : ""}</div>` : ""}
      <p class="big-name">${esc(contactName(d))}</p>
      <p class="muted">${esc(contactAddress(d))}</p>
      ${!d.phone && d.bsuid ? `<p class="muted" title="${esc(gettext("Business-scoped user id: replies go to it; authentication templates need a phone"))}">${esc(gettext("No phone"))} · ${esc(d.bsuid)}</p>` : ""}
      ${d.email && d.email !== contactAddress(d) ? `<p class="muted">${esc(d.email)}</p>` : ""}
      <h3>${esc(gettext("Tags"))}</h3>${d.tags.length ? `<div class="tags">${d.tags.map((t) => `<span class="tag">${esc(t)}</span>`).join("")}</div>` : `<p class="muted">${esc(gettext("No tags"))}</p>`}
      <h3>${esc(gettext("Custom fields"))}</h3>${cf.length ? `<dl class="kv">${cf.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(typeof v === "object" ? JSON.stringify(v) : v)}</dd>`).join("")}</dl>` : `<p class="muted">${esc(gettext("None"))}</p>`}
      <h3>${esc(gettext("Consent"))}</h3>
      <p class="consent ${consent.opted_in ? "in" : "out"}">${esc(consent.opted_in ? gettext("Opted in") : consent.updated_at ? gettext("Opted out of marketing") : gettext("No opt-in on record"))}</p>
      ${consent.history && consent.history.length ? `<ul class="history">${consent.history.map((h) => `<li>${esc(h.status === "opt_in" ? gettext("Opted in") : gettext("Opted out"))} · ${esc(h.source)} · ${esc(new Date(h.created_at).toLocaleString())}${h.note ? " — " + esc(h.note) : ""}</li>`).join("")}</ul>` : `<p class="muted">${esc(gettext("No consent changes recorded"))}</p>`}
      <h3>${esc(gettext("Previous conversations"))}</h3>
      ${d.previous_conversations.length ? d.previous_conversations.map((p) => `<a class="prev-conv" href="#" data-open="${esc(p.id)}"><span class="pill state-${esc(p.state)}">${esc(stateName(p.state))}</span> ${esc(fmtTime(p.last_message_at || p.created_at))}<br><span class="muted">${esc(p.last_message_preview || "")}</span></a>`).join("") : `<p class="muted">${esc(gettext("None"))}</p>`}
      ${c.channel_kind === "whatsapp" ? `<h3>${esc(gettext("Blocking"))}</h3>
      <p class="muted">${esc(d.blocked_at ? fmt(gettext("Blocked %(when)s: no messages go to them."), { when: new Date(d.blocked_at).toLocaleString() }) : gettext("Not blocked."))}</p>
      <button type="button" class="btn" id="block-toggle" data-blocked="${d.blocked_at ? "1" : ""}">${esc(d.blocked_at ? gettext("Unblock") : gettext("Block"))}</button>` : ""}`;
    if ($("block-toggle")) $("block-toggle").onclick = () => toggleBlock(c); // Meta's block_users is WhatsApp's
  }

  async function toggleBlock(c) {
    const d = c.contact_details; if (!d) return;
    const verb = d.blocked_at ? "unblock" : "block";
    if (verb === "block" && !window.confirm(gettext("Block this customer? They will get no messages from your numbers."))) return;
    try {
      const out = await api("POST", `/contacts/${encodeURIComponent(d.id)}/${verb}`, {});
      d.blocked_at = out.blocked_at; renderSidebar(c);
    } catch (e) { showError(e.message); }
  }

  // ---------------------------------------------------------------- actions
  async function patchConversation(body) {
    const id = S.current; if (!id) return;
    try { upsertConversation(await api("PATCH", `/conversations/${encodeURIComponent(id)}`, body)); }
    catch (e) { showError(e.message); }
  }
  function toggleResolve() { const c = S.convs.get(S.current); if (c) patchConversation({ state: c.state === "resolved" ? "open" : "resolved" }); }
  function assignToMe() { if (S.current) patchConversation({ assigned_user_id: S.me.id }); }

  function resetComposer() {
    $("compose").value = ""; S.composeKey = newKey(); $("compose-error").textContent = ""; hideCanned();
  }
  function showError(msg) { $("compose-error").textContent = msg || ""; }
  function setMode(mode) {
    S.mode = mode;
    $("tab-reply").classList.toggle("active", mode === "reply"); $("tab-reply").setAttribute("aria-selected", mode === "reply");
    $("tab-note").classList.toggle("active", mode === "note"); $("tab-note").setAttribute("aria-selected", mode === "note");
    $("composer").classList.toggle("note-mode", mode === "note");
    $("compose").placeholder = mode === "note" ? gettext("Private note — only your team sees this") : gettext("Type a reply — Enter sends, Shift+Enter for a new line, / for quick replies");
    $("send-btn").textContent = mode === "note" ? gettext("Add note") : gettext("Send");
    $("open-picker-2").hidden = mode === "note";
    renderHead();
  }
  async function send() {
    if (S.sending) return; // a double click sends once; a retry reuses the same Idempotency-Key
    const text = $("compose").value;
    const withFile = S.mode === "reply" && S.attachment;
    if (withFile && !S.attachment.media) { showError(gettext("The file is still uploading…")); return; }
    if ((!text.trim() && !withFile) || !S.current) return;
    const id = S.current;
    S.sending = true; $("send-btn").disabled = true; showError("");
    try {
      if (withFile) {
        await sendAttachment(text);
      } else if (S.mode === "note") {
        const n = await api("POST", `/conversations/${encodeURIComponent(id)}/notes`, { body: text }, { "Idempotency-Key": S.composeKey });
        S.notes.set(n.id, n); renderMessages();
      } else {
        const m = await api("POST", `/conversations/${encodeURIComponent(id)}/messages`, { type: "text", text: { body: text } }, { "Idempotency-Key": S.composeKey });
        S.messages.set(m.id, m); renderMessages();
      }
      resetComposer();
      S.pinned = true; stickToEnd();
    } catch (e) {
      if (e.code === "OUTSIDE_24H_WINDOW") { showError(gettext("The 24-hour window has closed — send a template instead.")); refreshConversation(id); }
      else showError(e.status ? e.message : fmt(gettext("%(error)s — press Enter to retry"), { error: e.message }));
    } finally { S.sending = false; $("send-btn").disabled = false; }
  }

  // canned responses
  let cannedIdx = 0, cannedItems = [];
  function updateCanned() {
    const v = $("compose").value;
    const m = /^\/([\w-]*)$/.exec(v);
    if (!m || S.mode === "note" && false) { hideCanned(); return; }
    const q = m[1].toLowerCase();
    cannedItems = S.canned.filter((c) => c.shortcut.toLowerCase().includes(q) || (c.title || "").toLowerCase().includes(q)).slice(0, 8);
    if (!cannedItems.length) { $("canned-pop").innerHTML = `<div class="muted">${esc(fmt(gettext("No canned response matches /%(q)s"), { q }))}</div>`; $("canned-pop").hidden = false; return; }
    cannedIdx = Math.min(cannedIdx, cannedItems.length - 1);
    $("canned-pop").innerHTML = cannedItems.map((c, i) => `<div role="option" data-i="${i}" class="${i === cannedIdx ? "active" : ""}" aria-selected="${i === cannedIdx}"><b>/${esc(c.shortcut)}</b> ${esc(c.title || "")}<br><span class="muted">${esc(c.body.slice(0, 90))}</span></div>`).join("");
    $("canned-pop").hidden = false;
  }
  function hideCanned() { $("canned-pop").hidden = true; cannedItems = []; cannedIdx = 0; }
  function pickCanned(i) {
    const c = cannedItems[i]; if (!c) return;
    $("compose").value = c.body; hideCanned(); $("compose").focus();
  }

  // template picker
  function varsOf(t) { return t.variables || []; }
  async function openPicker() {
    if (!S.current) return;
    $("picker-error").textContent = "";
    try { S.templates = (await api("GET", `/conversations/${encodeURIComponent(S.current)}/templates`)).data; }
    catch (e) { S.templates = []; $("picker-error").textContent = e.message; }
    const sel = $("tpl-select");
    sel.innerHTML = S.templates.length ? S.templates.map((t, i) => `<option value="${i}">${esc(t.name)} · ${esc(t.language)} · ${esc(t.category.toLowerCase())}</option>`).join("") : "";
    if (!S.templates.length) $("picker-error").textContent = gettext("No approved templates for this number yet.");
    sel.size = Math.max(3, Math.min(8, S.templates.length));
    sel.selectedIndex = S.templates.length ? 0 : -1;
    S.pickerKey = newKey();
    renderPickerFields();
    $("picker").showModal();
    sel.focus();
  }
  function renderPickerFields() {
    const t = S.templates[$("tpl-select").selectedIndex];
    $("tpl-fields").innerHTML = t ? varsOf(t).map((v, i) => `<label for="tplv-${i}">${esc(fmt(gettext("Variable %(name)s"), { name: "{{" + v + "}}" }))}</label><input id="tplv-${i}" data-var="${esc(v)}" autocomplete="off" placeholder="${esc(fmt(gettext("Value for %(name)s"), { name: "{{" + v + "}}" }))}">`).join("") : "";
    renderPreview();
  }
  function fill(text, values) {
    return esc(text).replace(/\{\{\s*([\w]+)\s*\}\}/g, (all, name) => values[name] ? `<mark>${esc(values[name])}</mark>` : `<mark>{{${esc(name)}}}</mark>`);
  }
  function pickerValues() {
    const values = {};
    document.querySelectorAll("#tpl-fields input").forEach((i) => { values[i.dataset.var] = i.value; });
    return values;
  }
  function renderPreview() {
    const t = S.templates[$("tpl-select").selectedIndex];
    if (!t) { $("tpl-preview").innerHTML = `<span class="muted">${esc(gettext("Pick a template"))}</span>`; return; }
    const v = pickerValues();
    $("tpl-preview").innerHTML = (t.header ? `<span class="tpl-head">${fill(t.header, v)}</span>` : "") + fill(t.body, v) + (t.footer ? `<span class="tpl-foot">${esc(t.footer)}</span>` : "") +
      (t.buttons && t.buttons.length ? `<div class="interactive-opts">${t.buttons.map((b) => `<span>${esc(b)}</span>`).join("")}</div>` : "");
  }
  async function sendTemplate() {
    const t = S.templates[$("tpl-select").selectedIndex];
    if (!t || S.sending) return;
    const values = pickerValues();
    const missing = varsOf(t).filter((v) => !values[v] || !values[v].trim());
    if (missing.length) { $("picker-error").textContent = fmt(gettext("Fill in every variable: %(names)s"), { names: missing.map((v) => "{{" + v + "}}").join(", ") }); return; }
    const variables = t.parameter_format === "NAMED" ? values : varsOf(t).map((v) => values[v]);
    S.sending = true; $("picker-send").disabled = true; $("picker-error").textContent = "";
    try {
      const m = await api("POST", `/conversations/${encodeURIComponent(S.current)}/messages`, { type: "template", template: { name: t.name, language: t.language, variables } }, { "Idempotency-Key": S.pickerKey });
      S.pinned = true; S.messages.set(m.id, m); renderMessages();
      $("picker").close();
    } catch (e) { $("picker-error").textContent = e.message; }
    finally { S.sending = false; $("picker-send").disabled = false; }
  }

  // snooze
  function snoozePreset(kind) {
    const d = new Date();
    if (kind === "1h") d.setHours(d.getHours() + 1);
    else if (kind === "4h") d.setHours(d.getHours() + 4);
    else if (kind === "tomorrow") { d.setDate(d.getDate() + 1); d.setHours(9, 0, 0, 0); }
    else if (kind === "week") { d.setDate(d.getDate() + ((8 - d.getDay()) % 7 || 7)); d.setHours(9, 0, 0, 0); }
    return d;
  }
  function doSnooze(date) { $("snooze").close(); patchConversation({ state: "snoozed", snooze_until: date.toISOString() }); }

  // ---------------------------------------------------------------- labels, teams, bulk, views
  function labelById(id) { return S.labels.find((l) => l.id === id); }
  function labelChips(ids) {
    return (ids || []).map(labelById).filter(Boolean).map((l) => `<span class="lchip" style="--lc:${esc(l.color)}">${esc(l.name)}</span>`).join("");
  }
  function waited(iso) {
    const ms = Date.now() - new Date(iso);
    const m = Math.max(0, Math.floor(ms / 6e4));
    if (m < 60) return m + "m";
    const h = Math.floor(m / 60);
    return h < 48 ? `${h}h ${m % 60}m` : `${Math.floor(h / 24)}d`;
  }
  function presenceOf(userId) { const p = S.presence.find((x) => x.user_id === userId); return p ? p.status : "offline"; }
  function presenceDot(userId) { const st = presenceOf(userId); return st === "online" ? "●" : st === "away" ? "◐" : "○"; }
  function renderFilterOptions() {
    const keep = (id, html) => { const el = $(id), v = el.value; el.innerHTML = html; el.value = v; if (el.value !== v) el.value = ""; };
    keep("f-label", `<option value="">${esc(gettext("All labels"))}</option>` + S.labels.map((l) => `<option value="${esc(l.id)}">${esc(l.name)}</option>`).join(""));
    keep("f-team", `<option value="">${esc(gettext("All teams"))}</option><option value="none">${esc(gettext("No team"))}</option>` + S.teams.map((t) => `<option value="${esc(t.id)}">${esc(t.name)}</option>`).join(""));
    keep("f-view", `<option value="">${esc(gettext("Saved views…"))}</option>` + S.views.map((v) => `<option value="${esc(v.id)}">${esc(v.name)}</option>`).join(""));
    $("delete-view").hidden = !$("f-view").value;
    $("bulk-assign").innerHTML = `<option value="">${esc(gettext("Assign to…"))}</option><option value="__none">${esc(gettext("Unassigned"))}</option>` + S.agents.map((a) => `<option value="${esc(a.id)}">${presenceDot(a.id)} ${esc(a.name)}</option>`).join("") +
      (S.teams.length ? `<optgroup label="${esc(gettext("Team"))}">${S.teams.map((t) => `<option value="team:${esc(t.id)}">${esc(t.name)}</option>`).join("")}</optgroup>` : "");
    $("bulk-label").innerHTML = `<option value="">${esc(gettext("Label…"))}</option>` + S.labels.map((l) => `<option value="${esc(l.id)}">${esc(l.name)}</option>`).join("");
  }
  function renderBulk() {
    for (const id of Array.from(S.selected)) if (!S.order.includes(id)) S.selected.delete(id);
    $("bulk-bar").hidden = S.selected.size === 0;
    $("bulk-count").textContent = fmt(ngettext("%(n)s selected", "%(n)s selected", S.selected.size), { n: S.selected.size });
  }
  async function bulk(body) {
    try {
      await api("POST", "/conversations/bulk", Object.assign({ conversation_ids: Array.from(S.selected) }, body));
      S.selected.clear();
      await loadList(true);
    } catch (e) { showError(e.message); alertList(e.message); }
  }
  function alertList(msg) { $("list-footer").textContent = msg; }
  function renderLabelPop() {
    const c = S.convs.get(S.current);
    const on = new Set((c && c.label_ids) || []);
    $("label-pop-list").innerHTML = S.labels.length ? S.labels.map((l) => `<label class="label-opt"><input type="checkbox" data-label="${esc(l.id)}" ${on.has(l.id) ? "checked" : ""}> <span class="lchip" style="--lc:${esc(l.color)}">${esc(l.name)}</span></label>`).join("") : `<p class="muted">${esc(gettext("No labels yet — add one below."))}</p>`;
  }
  async function reloadLabels() { S.labels = (await api("GET", "/labels")).data; renderFilterOptions(); renderList(); if (S.current) renderHead(); }
  async function reloadTeams() { S.teams = (await api("GET", "/teams")).data; renderFilterOptions(); if (S.current) renderHead(); }
  function applyView(v) {
    const f = v.filters || {};
    S.filters = Object.assign({ state: "open", assignee: "all", channel: "", q: "", label: "", team: "", sort: "newest", needsReply: false }, {
      state: f.state !== undefined ? f.state : "open", assignee: f.assignee || "all", channel: f.channel_kind || "", q: f.q || "",
      label: f.label || "", team: f.team_id || "", sort: f.sort || "newest", needsReply: f.needs_reply === "true",
    });
    syncFilterControls();
    loadList(true);
  }
  function syncFilterControls() {
    $("f-state").value = S.filters.state; $("f-channel").value = S.filters.channel; $("f-label").value = S.filters.label;
    $("f-team").value = S.filters.team; $("f-sort").value = S.filters.sort; $("search").value = S.filters.q;
    $("f-needs-reply").classList.toggle("active", S.filters.needsReply); $("f-needs-reply").setAttribute("aria-pressed", S.filters.needsReply);
    $("f-sort").disabled = S.filters.needsReply;
    document.querySelectorAll("[data-assignee]").forEach((x) => x.classList.toggle("active", x.dataset.assignee === S.filters.assignee));
  }
  function currentFilters() {
    const f = S.filters, out = {};
    if (f.state !== "open") out.state = f.state;
    if (f.assignee !== "all") out.assignee = f.assignee;
    if (f.channel) out.channel_kind = f.channel;
    if (f.label) out.label = f.label;
    if (f.team) out.team_id = f.team;
    if (f.sort !== "newest") out.sort = f.sort;
    if (f.needsReply) out.needs_reply = "true";
    if (f.q) out.q = f.q;
    return out;
  }

  // ---------------------------------------------------------------- presence, peers, title, alerts
  function renderPeers() {
    const now = Date.now(), here = [];
    for (const [uid, p] of S.peers) {
      if (now - p.at > (p.replying ? 8000 : 45000)) { S.peers.delete(uid); continue; }
      if (p.conversation_id === S.current) here.push(p);
    }
    const replying = here.filter((p) => p.replying), viewing = here.filter((p) => !p.replying);
    const el = $("peer-note");
    if (replying.length) el.textContent = fmt(ngettext("%(names)s is replying…", "%(names)s are replying…", replying.length), { names: replying.map((p) => p.name).join(", ") });
    else if (viewing.length) el.textContent = fmt(ngettext("%(names)s is also looking at this conversation", "%(names)s are also looking at this conversation", viewing.length), { names: viewing.map((p) => p.name).join(", ") });
    el.hidden = !here.length;
    el.classList.toggle("replying", replying.length > 0);
  }
  let lastPeerSent = 0, lastPeerState = null;
  function announce(replying) {
    const ws = S.ws; if (!ws || ws.readyState !== 1) return;
    const key = S.current + ":" + replying;
    if (key === lastPeerState && Date.now() - lastPeerSent < (replying ? 3000 : 20000)) return;
    lastPeerState = key; lastPeerSent = Date.now();
    ws.send(JSON.stringify({ type: "peer", conversation_id: S.current, replying: !!replying }));
  }
  const baseTitle = document.title;
  function renderTitle() {
    let total = 0;
    for (const c of S.convs.values()) if (c.state !== "resolved") total += c.unread_count || 0;
    document.title = total ? `(${total}) ${baseTitle}` : baseTitle;
  }
  function alertsOn() { try { return localStorage.getItem("reach.alerts") === "on"; } catch (e) { return false; } }
  function renderAlertsBtn() {
    const on = alertsOn();
    $("notify-btn").textContent = on ? gettext("Alerts: on") : gettext("Alerts: off");
    $("notify-btn").setAttribute("aria-pressed", on);
  }
  let audioCtx = null;
  function ding() {
    try {
      audioCtx = audioCtx || new (window.AudioContext || window.webkitAudioContext)();
      const o = audioCtx.createOscillator(), g = audioCtx.createGain();
      o.type = "sine"; o.frequency.value = 880; g.gain.value = 0.08;
      o.connect(g); g.connect(audioCtx.destination);
      o.start(); g.gain.exponentialRampToValueAtTime(0.0001, audioCtx.currentTime + 0.35); o.stop(audioCtx.currentTime + 0.4);
    } catch (e) { /* no audio */ }
  }
  function notifyInbound(e) {
    if (!alertsOn()) return;
    const d = e.data || {}, cid = d.conversation_id || (d.message && d.message.conversation_id);
    const c = S.convs.get(cid);
    if (c && c.assigned_user_id && c.assigned_user_id !== S.me.id) return; // someone else's
    if (cid === S.current && document.hasFocus()) return;
    S.alerted = (S.alerted || 0) + 1;
    ding();
    if (window.Notification && Notification.permission === "granted") {
      const who = c ? contactName(c.contact) : (d.profile_name || d.from || gettext("A customer"));
      const text = (d.message && d.message.body) || d.body || d.text || gettext("New message");
      try { const n = new Notification(who, { body: String(text).slice(0, 140), tag: cid }); n.onclick = () => { window.focus(); openConversation(cid); }; } catch (err) { /* blocked */ }
    }
  }

  // ---------------------------------------------------------------- composer extras: attachments, emoji, quick replies, typing
  const KIND_ICON = { image: "IMG", video: "VIDEO", audio: "AUDIO", document: "DOC", sticker: "STICKER" };
  function fmtSize(n) { return n >= 1048576 ? (n / 1048576).toFixed(1) + " MB" : Math.ceil(n / 1024) + " KB"; }
  function kindOf(file) { return ((boot.media || {}).kinds || {})[file.type] || null; }
  function clearAttachment() {
    const a = S.attachment;
    if (a && a.xhr && !a.media) { try { a.xhr.abort(); } catch (e) { /* gone */ } }
    if (a && a.thumb) URL.revokeObjectURL(a.thumb);
    S.attachment = null; $("attach").hidden = true; $("attach-input").value = ""; delete $("attach").dataset.mediaId;
    $("attach-thumb").hidden = true; $("attach-thumb").removeAttribute("src");
    $("send-btn").disabled = false;
  }
  function attachFile(file) {
    if (!file || !S.current) return;
    if (S.mode === "note") { showError(gettext("Attachments go to the customer: switch to Reply first.")); return; }
    const kind = kindOf(file);
    if (!kind) { showError(fmt(gettext("WhatsApp cannot carry %(type)s: send a JPEG/PNG image, MP4 video, AAC/MP3/OGG/AMR audio or a PDF/Office/text document."), { type: file.type || gettext("this kind of file") })); return; }
    const limit = ((boot.media || {}).limits || {})[kind];
    if (limit && file.size > limit) { showError(fmt(gettext("This file is too large: %(kind)s files may be at most %(limit)s (this one is %(size)s)."), { kind, limit: fmtSize(limit), size: fmtSize(file.size) })); return; }
    clearAttachment(); showError("");
    const a = S.attachment = { file, kind, media: null, xhr: null, conversation: S.current };
    $("attach").hidden = false; $("attach-icon").textContent = KIND_ICON[kind] || "FILE";
    if (kind === "image" || kind === "sticker") { a.thumb = URL.createObjectURL(file); $("attach-thumb").src = a.thumb; $("attach-thumb").hidden = false; $("attach-icon").hidden = true; }
    else { $("attach-icon").hidden = false; }
    $("attach-name").textContent = `${file.name || kind} · ${fmtSize(file.size)}`;
    $("attach-progress").value = 0; $("attach-progress").hidden = false;
    $("send-btn").disabled = true;
    const form = new FormData(); form.append("file", file, file.name || kind); if (file.name) form.append("filename", file.name);
    const xhr = a.xhr = new XMLHttpRequest();
    xhr.open("POST", API + "/media");
    xhr.setRequestHeader("X-CSRFToken", csrf); xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) $("attach-progress").value = Math.round(100 * ev.loaded / ev.total); };
    xhr.onload = () => {
      if (S.attachment !== a) return;
      let body = null; try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      if (xhr.status === 201 && body) {
        a.media = body; $("attach-progress").value = 100; $("attach-progress").hidden = true; $("send-btn").disabled = false;
        $("attach").dataset.mediaId = body.id;
      } else { showError((body && body.error && body.error.message) || fmt(gettext("Upload failed (HTTP %(status)s)"), { status: xhr.status })); clearAttachment(); }
    };
    xhr.onerror = () => { if (S.attachment === a) { showError(gettext("Upload failed — check the connection and try again.")); clearAttachment(); } };
    xhr.send(form);
  }
  async function sendAttachment(text) {
    const a = S.attachment, id = S.current;
    const content = { media_id: a.media.id };
    if (text.trim() && a.kind !== "audio" && a.kind !== "sticker") content.caption = text.trim();
    if (a.kind === "document" && a.file.name) content.filename = a.file.name;
    const m = await api("POST", `/conversations/${encodeURIComponent(id)}/messages`, { type: a.kind, [a.kind]: content }, { "Idempotency-Key": S.composeKey });
    S.messages.set(m.id, m); clearAttachment(); renderMessages();
  }
  const EMOJI = "😀 😃 😄 😁 😅 😂 🙂 😉 😊 😍 😘 🤔 😐 😴 😎 🤗 🙄 😬 😢 😭 😡 🙏 👍 👎 👌 👏 🙌 💪 🤝 👋 ❤️ 💙 💚 💛 🔥 ✨ 🎉 🎁 ✅ ❌ ⚠️ ⏰ 📦 🚚 🛒 💳 📞 📍 📅 ⭐".split(" ");
  function toggleEmoji(force) {
    const pop = $("emoji-pop"), show = force !== undefined ? force : pop.hidden;
    if (show && !pop.innerHTML) pop.innerHTML = EMOJI.map((e) => `<button type="button" class="emo" data-emoji="${e}" aria-label="${e}">${e}</button>`).join("");
    pop.hidden = !show; $("emoji-btn").setAttribute("aria-expanded", show);
  }
  function insertAtCursor(text) {
    const t = $("compose"), start = t.selectionStart || t.value.length, end = t.selectionEnd || t.value.length;
    t.value = t.value.slice(0, start) + text + t.value.slice(end);
    t.selectionStart = t.selectionEnd = start + text.length; t.focus();
  }
  let lastTyping = { id: null, at: 0 };
  function typingTick() {
    if (S.mode !== "reply" || !S.current || !$("compose").value.trim()) return;
    announce(true);
    const c = S.convs.get(S.current);
    if (!c || !windowOpen(c) || c.channel_kind !== "whatsapp") return;
    if (lastTyping.id === S.current && Date.now() - lastTyping.at < 15000) return;
    lastTyping = { id: S.current, at: Date.now() };
    api("POST", `/conversations/${encodeURIComponent(S.current)}/typing`).catch(() => null);
  }

  // ---------------------------------------------------------------- events
  const dirty = new Set();
  let flushTimer = null, flushing = false, currentDirty = false, notesDirty = false, sidebarDirty = false;
  function applyEvent(e) {
    const d = e.data || {};
    if (e.type === "label.changed") { reloadLabels().catch(() => null); return; }
    if (e.type === "team.changed") { reloadTeams().catch(() => null); return; }
    if (e.type === "agent.presence_changed") {
      const p = S.presence.find((x) => x.user_id === d.user_id);
      if (p) p.status = d.status; else S.presence.push({ user_id: d.user_id, name: agentName(d.user_id), status: d.status });
      renderFilterOptions(); if (S.current) renderHead();
      return;
    }
    if (e.type === "message.inbound") notifyInbound(e);
    const cid = d.conversation_id || (d.message && d.message.conversation_id);
    if (e.type.startsWith("message.") || e.type.startsWith("conversation.")) {
      if (cid) {
        if (cid === S.current) { currentDirty = true; if (e.type === "conversation.note_added") notesDirty = true; }
        // Customers' messages and agents' actions can move any conversation into the list; status
        // updates (a campaign produces thousands) only matter to conversations already on screen.
        const listRelevant = e.type === "message.inbound" || e.type.startsWith("conversation.") || S.convs.has(cid);
        if (listRelevant || cid === S.current) dirty.add(cid);
      }
    } else if (e.type.startsWith("contact.")) {
      const cur = S.convs.get(S.current);
      if (cur && cur.contact && (d.contact_id === cur.contact.id || d.id === cur.contact.id || (d.contact && d.contact.id === cur.contact.id))) sidebarDirty = true;
    }
    scheduleFlush();
  }
  // Coalesce bursts: at most one round of fetches per 100 ms, one fetch per conversation per round.
  let lastFlush = 0;
  function scheduleFlush() { if (!flushTimer) flushTimer = setTimeout(flush, Math.max(0, 100 - (Date.now() - lastFlush))); }
  async function flush() {
    flushTimer = null;
    lastFlush = Date.now();
    if (flushing) { flushTimer = setTimeout(flush, 30); return; }
    flushing = true;
    const ids = Array.from(dirty); dirty.clear();
    const cur = currentDirty, notes = notesDirty, side = sidebarDirty;
    currentDirty = notesDirty = sidebarDirty = false;
    try {
      const jobs = ids.map((id) => refreshConversation(id, id === S.current && side).catch(() => null));
      if (cur && S.current) { jobs.push(refreshMessages(false).catch(() => null)); if (notes) jobs.push(loadNotes().catch(() => null)); }
      if (side && S.current && !ids.includes(S.current)) jobs.push(refreshConversation(S.current, true).catch(() => null));
      await Promise.all(jobs);
      if (cur && S.current && document.hasFocus()) markRead(S.current);
    } finally { flushing = false; }
  }
  async function fullReload() {
    await loadList(true);
    if (S.current) { await Promise.all([refreshConversation(S.current, true), refreshMessages(false), loadNotes()]); }
  }

  function setConn(up, text) {
    $("reconnecting").hidden = up;
    const s = $("conn-status"); s.textContent = text; s.classList.toggle("down", !up);
    document.body.dataset.ws = up ? "open" : "closed";
  }
  let pingTimer = null, pongDeadline = null;
  function connect() {
    if (S.wsHeld) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws/inbox/`);
    S.ws = ws;
    ws.onopen = () => {
      S.retries = 0;
      ws.send(JSON.stringify({ resume_after: S.lastSeq }));
      setConn(true, gettext("Live"));
      clearInterval(pingTimer);
      pingTimer = setInterval(() => {
        if (ws.readyState !== 1) return;
        ws.send(JSON.stringify({ type: "ping", t: Date.now() }));
        clearTimeout(pongDeadline);
        pongDeadline = setTimeout(() => { try { ws.close(); } catch (e) { /* already closed */ } }, 10000);
      }, (boot.heartbeat_seconds || 20) * 1000);
    };
    ws.onmessage = (msg) => {
      let f; try { f = JSON.parse(msg.data); } catch (e) { return; }
      if (f.type === "pong") { clearTimeout(pongDeadline); return; }
      if (f.type === "reset") { S.lastSeq = f.sequence; fullReload(); return; }
      if (f.type === "peer") {
        S.peers.set(f.user_id, { name: f.name, conversation_id: f.conversation_id, replying: f.replying, at: Date.now() });
        renderPeers();
        return;
      }
      if (f.type === "events") {
        for (const e of f.events) {
          if (e.sequence <= S.lastSeq) continue; // already applied
          S.lastSeq = e.sequence;
          applyEvent(e);
        }
        document.body.dataset.lastSeq = String(S.lastSeq);
      }
    };
    ws.onclose = () => {
      clearInterval(pingTimer); clearTimeout(pongDeadline);
      if (S.ws !== ws) return;
      setConn(false, gettext("Reconnecting…"));
      if (S.wsHeld) return;
      const delay = Math.min(10000, 300 * Math.pow(2, S.retries++)) * (0.8 + Math.random() * 0.4);
      setTimeout(connect, delay);
    };
    ws.onerror = () => { /* onclose follows */ };
  }
  window.addEventListener("online", () => { if (!S.ws || S.ws.readyState > 1) { S.retries = 0; connect(); } });

  // ---------------------------------------------------------------- wiring
  function typing(e) { const t = e.target; return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable); }
  function move(delta) {
    if (!S.order.length) return;
    let i = S.order.indexOf(S.current);
    i = i < 0 ? 0 : Math.max(0, Math.min(S.order.length - 1, i + delta));
    openConversation(S.order[i]);
  }
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { if (typing(e)) { e.target.blur(); hideCanned(); } return; }
    if (typing(e) || e.metaKey || e.ctrlKey || e.altKey) return;
    if (document.querySelector("dialog[open]")) return;
    const k = e.key;
    if (k === "j") { move(1); e.preventDefault(); }
    else if (k === "k") { move(-1); e.preventDefault(); }
    else if (k === "r" && S.current) { setMode("reply"); $("compose").focus(); e.preventDefault(); }
    else if (k === "n" && S.current) { setMode("note"); $("compose").focus(); e.preventDefault(); }
    else if (k === "e" && S.current) { toggleResolve(); e.preventDefault(); }
    else if (k === "a" && S.current) { assignToMe(); e.preventDefault(); }
    else if (k === "/") { $("search").focus(); e.preventDefault(); }
    else if (k === "?") { $("help").showModal(); e.preventDefault(); }
  });
  $("shortcuts-btn") && $("shortcuts-btn").addEventListener("click", () => $("help").showModal());
  $("conv-list").addEventListener("click", (e) => {
    if (e.target.closest(".avatar")) return; // the avatar is the bulk-select checkbox
    const li = e.target.closest(".conv"); if (li) openConversation(li.dataset.id);
  });
  $("conv-list").addEventListener("scroll", () => {
    const ul = $("conv-list");
    if (S.nextCursor && !S.loadingMore && ul.scrollTop + ul.clientHeight > ul.scrollHeight - 120) {
      S.loadingMore = true; loadList(false).finally(() => { S.loadingMore = false; });
    }
  });
  $("messages").addEventListener("scroll", () => {
    const box = $("messages");
    S.pinned = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    if (box.scrollTop < 60) loadOlder();
  });
  // A copy-code or authentication button in a sent template copies its code, as it does on the phone.
  $("thread-pane").addEventListener("click", (e) => {
    const btn = e.target.closest && e.target.closest(".tpl-copy");
    if (!btn || !btn.dataset.code || !navigator.clipboard) return;
    navigator.clipboard.writeText(btn.dataset.code).then(() => { btn.classList.add("copied"); setTimeout(() => btn.classList.remove("copied"), 1200); }, () => null);
  });
  $("back-to-list").addEventListener("click", () => setPane("list"));
  $("show-contact").addEventListener("click", () => setPane($("inbox").dataset.pane === "contact" ? "thread" : "contact"));
  $("back-to-thread").addEventListener("click", () => setPane("thread"));
  // Theme: the system's (prefers-color-scheme) until the person picks one here.
  function currentTheme() {
    const t = document.documentElement.dataset.theme;
    if (t) return t;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function renderThemeBtn() {
    const dark = currentTheme() === "dark";
    $("theme-btn").textContent = dark ? "☀ " + gettext("Light") : "☾ " + gettext("Dark");
    $("theme-btn").setAttribute("aria-label", dark ? gettext("Switch to the light theme") : gettext("Switch to the dark theme"));
  }
  $("theme-btn").addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem("reach.theme", next); } catch (e) { /* private mode */ }
    renderThemeBtn();
  });
  renderThemeBtn();
  $("side-pane").addEventListener("click", (e) => { const a = e.target.closest("[data-open]"); if (a) { e.preventDefault(); openConversation(a.dataset.open); } });
  let searchTimer = null;
  $("search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(() => { S.filters.q = $("search").value.trim(); loadList(true); }, 250); });
  document.querySelectorAll("[data-assignee]").forEach((b) => b.addEventListener("click", () => {
    document.querySelectorAll("[data-assignee]").forEach((x) => x.classList.toggle("active", x === b));
    S.filters.assignee = b.dataset.assignee; loadList(true);
  }));
  $("f-state").addEventListener("change", () => { S.filters.state = $("f-state").value; loadList(true); });
  $("f-channel").addEventListener("change", () => { S.filters.channel = $("f-channel").value; loadList(true); });
  $("t-assign").addEventListener("change", () => patchConversation({ assigned_user_id: $("t-assign").value || null }));
  $("t-resolve").addEventListener("click", toggleResolve);
  $("t-pending").addEventListener("click", () => patchConversation({ state: "pending" }));
  $("t-snooze").addEventListener("click", () => { $("snooze-at").value = ""; $("snooze").showModal(); });
  document.querySelectorAll("[data-snooze]").forEach((b) => b.addEventListener("click", () => doSnooze(snoozePreset(b.dataset.snooze))));
  $("snooze-ok").addEventListener("click", () => { const v = $("snooze-at").value; if (v) doSnooze(new Date(v)); });
  $("snooze-cancel").addEventListener("click", () => $("snooze").close());
  $("tab-reply").addEventListener("click", () => setMode("reply"));
  $("tab-note").addEventListener("click", () => setMode("note"));
  $("send-btn").addEventListener("click", send);
  $("compose").addEventListener("input", () => { updateCanned(); const t = $("compose"); t.style.height = "auto"; t.style.height = Math.min(200, t.scrollHeight) + "px"; });
  $("compose").addEventListener("keydown", (e) => {
    if (!$("canned-pop").hidden && cannedItems.length) {
      if (e.key === "ArrowDown") { cannedIdx = (cannedIdx + 1) % cannedItems.length; updateCanned(); e.preventDefault(); return; }
      if (e.key === "ArrowUp") { cannedIdx = (cannedIdx - 1 + cannedItems.length) % cannedItems.length; updateCanned(); e.preventDefault(); return; }
      if (e.key === "Enter" || e.key === "Tab") { pickCanned(cannedIdx); e.preventDefault(); return; }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  $("canned-pop").addEventListener("mousedown", (e) => { const d = e.target.closest("[data-i]"); if (d) { e.preventDefault(); pickCanned(+d.dataset.i); } });
  $("open-picker").addEventListener("click", openPicker);
  $("open-picker-2").addEventListener("click", openPicker);
  $("tpl-select").addEventListener("change", renderPickerFields);
  $("tpl-fields").addEventListener("input", renderPreview);
  $("picker-send").addEventListener("click", sendTemplate);
  $("picker-cancel").addEventListener("click", () => $("picker").close());
  window.addEventListener("focus", () => { if (S.current) markRead(S.current); });
  // Countdown badges tick without any server traffic.
  setInterval(() => { renderList(); if (S.current) renderHead(); }, 30000);

  // organisation controls
  $("f-label").addEventListener("change", () => { S.filters.label = $("f-label").value; loadList(true); });
  $("f-team").addEventListener("change", () => { S.filters.team = $("f-team").value; loadList(true); });
  $("f-sort").addEventListener("change", () => { S.filters.sort = $("f-sort").value; loadList(true); });
  $("f-needs-reply").addEventListener("click", () => { S.filters.needsReply = !S.filters.needsReply; syncFilterControls(); loadList(true); });
  $("f-view").addEventListener("change", () => {
    const v = S.views.find((x) => x.id === $("f-view").value);
    $("delete-view").hidden = !v;
    if (v) applyView(v);
  });
  $("save-view").addEventListener("click", async () => {
    const name = (prompt(gettext("Name this view"), "") || "").trim();
    if (!name) return;
    try {
      const v = await api("POST", "/inbox/views", { name, filters: currentFilters() });
      S.views.push(v); S.views.sort((a, b) => a.name.localeCompare(b.name)); renderFilterOptions(); $("f-view").value = v.id; $("delete-view").hidden = false;
    } catch (e) { alertList(e.message); }
  });
  $("delete-view").addEventListener("click", async () => {
    const id = $("f-view").value; if (!id) return;
    try { await api("DELETE", `/inbox/views/${encodeURIComponent(id)}`); S.views = S.views.filter((v) => v.id !== id); $("f-view").value = ""; renderFilterOptions(); } catch (e) { alertList(e.message); }
  });
  $("conv-list").addEventListener("change", (e) => {
    const box = e.target.closest("[data-pick]"); if (!box) return;
    if (box.checked) S.selected.add(box.dataset.pick); else S.selected.delete(box.dataset.pick);
    renderList();
  });
  $("bulk-assign").addEventListener("change", () => {
    const v = $("bulk-assign").value; if (!v) return;
    if (v.startsWith("team:")) bulk({ action: "assign", team_id: v.slice(5) });
    else bulk({ action: "assign", assigned_user_id: v === "__none" ? "" : v });
    $("bulk-assign").value = "";
  });
  $("bulk-label").addEventListener("change", () => { const v = $("bulk-label").value; if (v) bulk({ action: "label", label_ids: [v] }); $("bulk-label").value = ""; });
  $("bulk-resolve").addEventListener("click", () => bulk({ action: "resolve" }));
  $("bulk-clear").addEventListener("click", () => { S.selected.clear(); renderList(); });
  $("t-team").addEventListener("change", () => patchConversation({ team_id: $("t-team").value || null }));
  $("t-label-btn").addEventListener("click", () => {
    const pop = $("label-pop"), show = pop.hidden;
    renderLabelPop(); pop.hidden = !show; $("t-label-btn").setAttribute("aria-expanded", show);
  });
  document.addEventListener("click", (e) => {
    if (!e.target.closest(".label-menu")) { $("label-pop").hidden = true; $("t-label-btn").setAttribute("aria-expanded", "false"); }
    if (!e.target.closest("#emoji-pop") && !e.target.closest("#emoji-btn")) toggleEmoji(false);
  });
  $("label-pop-list").addEventListener("change", async (e) => {
    const box = e.target.closest("[data-label]"); if (!box || !S.current) return;
    const id = S.current;
    try {
      const r = await api("POST", `/conversations/${encodeURIComponent(id)}/labels`, box.checked ? { add: [box.dataset.label] } : { remove: [box.dataset.label] });
      const c = S.convs.get(id); if (c) { c.label_ids = r.label_ids; upsertConversation(c); }
    } catch (err) { showError(err.message); box.checked = !box.checked; }
  });
  $("label-new").addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = $("label-new-name").value.trim(); if (!name) return;
    try {
      const l = await api("POST", "/labels", { name, color: $("label-new-color").value });
      S.labels.push(l); S.labels.sort((a, b) => a.name.localeCompare(b.name)); $("label-new-name").value = "";
      renderFilterOptions();
      if (S.current) {
        const r = await api("POST", `/conversations/${encodeURIComponent(S.current)}/labels`, { add: [l.id] });
        const c = S.convs.get(S.current); if (c) { c.label_ids = r.label_ids; upsertConversation(c); }
      }
      renderLabelPop();
    } catch (err) { showError(err.message); }
  });
  $("my-presence").addEventListener("change", async () => {
    try { S.presence = (await api("PUT", "/inbox/presence", { status: $("my-presence").value })).data; renderFilterOptions(); } catch (e) { alertList(e.message); }
  });
  $("notify-btn").addEventListener("click", async () => {
    const on = !alertsOn();
    if (on && window.Notification && Notification.permission === "default") { try { await Notification.requestPermission(); } catch (e) { /* older API */ } }
    try { localStorage.setItem("reach.alerts", on ? "on" : "off"); } catch (e) { /* private mode */ }
    if (on) ding(); // the click unlocks audio, and lets the agent hear what a new message sounds like
    renderAlertsBtn();
  });
  $("attach-btn").addEventListener("click", () => $("attach-input").click());
  $("filters-btn").addEventListener("click", () => {
    const open = !$("list-filters").classList.contains("open");
    $("list-filters").classList.toggle("open", open); $("filters-btn").setAttribute("aria-expanded", open);
  });
  $("attach-input").addEventListener("change", () => { const f = $("attach-input").files[0]; if (f) attachFile(f); });
  $("attach-remove").addEventListener("click", clearAttachment);
  $("thread-pane").addEventListener("dragover", (e) => { if (S.current && e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files")) { e.preventDefault(); $("thread-pane").classList.add("dropping"); } });
  $("thread-pane").addEventListener("dragleave", (e) => { if (!e.relatedTarget || !$("thread-pane").contains(e.relatedTarget)) $("thread-pane").classList.remove("dropping"); });
  $("thread-pane").addEventListener("drop", (e) => {
    $("thread-pane").classList.remove("dropping");
    const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (f) { e.preventDefault(); setMode("reply"); attachFile(f); }
  });
  $("compose").addEventListener("paste", (e) => {
    const items = Array.from((e.clipboardData && e.clipboardData.items) || []);
    const fileItem = items.find((i) => i.kind === "file");
    if (fileItem) { const f = fileItem.getAsFile(); if (f) { e.preventDefault(); attachFile(f); } }
  });
  $("emoji-btn").addEventListener("click", () => toggleEmoji());
  $("emoji-pop").addEventListener("click", (e) => { const b = e.target.closest("[data-emoji]"); if (b) { insertAtCursor(b.dataset.emoji); } });
  $("quick-btn").addEventListener("click", () => { $("compose").value = "/"; $("compose").focus(); updateCanned(); });
  $("compose").addEventListener("input", typingTick);
  setInterval(renderPeers, 4000);

  // start
  for (const c of boot.conversations.data) { S.convs.set(c.id, c); S.order.push(c.id); }
  S.nextCursor = boot.conversations.next_cursor;
  S.composeKey = newKey();
  renderFilterOptions();
  renderAlertsBtn();
  { const mine = S.presence.find((p) => p.user_id === S.me.id); $("my-presence").value = mine && mine.status === "away" ? "away" : "online"; }
  renderList();
  renderTitle();
  setConn(false, gettext("Connecting…"));
  connect();

  // Test hooks (used by the browser tests to cut the socket and hold it down).
  window.__inbox = {
    state: S,
    drop(hold) { S.wsHeld = !!hold; if (S.ws) S.ws.close(); },
    release() { S.wsHeld = false; S.retries = 0; connect(); },
    // A refresh triggered by an event that came before the drop is still queued or in flight.
    busy() { return Boolean(flushing || flushTimer); },
  };
})();
