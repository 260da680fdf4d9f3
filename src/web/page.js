// The FoloToy page. Every URL is relative, so it works at / and behind Home
// Assistant's ingress prefix alike. Text from toys is only ever set with
// textContent: a child's words are shown, never run.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  toys: [], sn: null, messages: [], history: true, error: null, searches: 0, searching: null, flagged: false,
  watch: { configured: [], page: [], lists: [] },
};

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

async function api(path, options) {
  const r = await fetch(path, options);
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.status === 204 ? null : r.json();
}

function toyName(sn) {
  const t = state.toys.find((t) => t.sn === sn);
  return t && t.name ? t.name : sn;
}

const time = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const day = (ms) => new Date(ms).toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });

function message(m, withToy, deletable) {
  const box = el("div", `msg ${m.kind}${m.flags ? " flagged" : ""}`, m.text);
  // The watch words it holds (see watch_words), before who said it.
  if (m.flags) box.append(el("span", "flags", `⚑ ${m.flags.join(", ")}`));
  const who = m.kind === "heard" ? "Child" : `${toyName(withToy || state.sn)}${m.role ? ` · role ${m.role}` : ""}`;
  box.append(el("span", "meta", `${withToy ? `${toyName(withToy)} · ${day(m.t)} · ` : ""}${who} · ${time(m.t)}`));
  if (deletable) {
    const b = el("button", "forget", "Delete");
    b.type = "button";
    b.setAttribute("aria-label", `Delete the exchange at ${time(m.t)}`);
    b.addEventListener("click", () => forgetExchange(m));
    box.append(b);
  }
  return box;
}

function drawChat() {
  const chat = $("chat");
  chat.replaceChildren();
  let lastDay = null;
  for (const m of state.messages) {
    const d = day(m.t);
    if (d !== lastDay) {
      chat.append(el("div", "day", d));
      lastDay = d;
    }
    // An exchange begins with what the child said, or with an answer nobody asked for.
    const i = state.messages.indexOf(m);
    chat.append(message(m, null, m.kind === "heard" || i === 0 || state.messages[i - 1].kind !== "heard"));
  }
  const note = $("note");
  const text = !state.history ? "No conversations are kept (history is off)."
    : state.error ? state.error
    : state.messages.length ? ""
    : state.flagged ? "Nothing flagged: no watch word was said." : "Nothing said yet.";
  note.hidden = !text;
  note.textContent = text;
}

const atBottom = () => window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;

// The newest messages of the toy shown. Older ones already loaded stay (a live
// sentence does not undo "Older messages"); a reply for a toy no longer shown is dropped.
const messagesOf = (sn) => `api/messages?sn=${encodeURIComponent(sn)}&limit=200${state.flagged ? "&flagged=1" : ""}`;

async function loadChat(fresh) {
  const sn = state.sn;
  if (!sn) return;
  const follow = fresh || atBottom();
  if (fresh || $("days").open) loadDays();
  let latest;
  try {
    latest = await api(messagesOf(sn));
    state.error = null;
  } catch (e) {
    latest = [];
    state.error = String(e.message);
  }
  if (sn !== state.sn) return;
  if (fresh) {
    state.messages = latest;
    $("older").hidden = latest.length < 200;
  } else {
    const cut = latest.length ? latest[0].t : Infinity;
    state.messages = state.messages.filter((m) => m.t < cut).concat(latest);
  }
  drawChat();
  if (follow) window.scrollTo(0, document.body.scrollHeight);
}

async function loadOlder() {
  const sn = state.sn;
  if (!state.messages.length) return;
  const older = await api(`${messagesOf(sn)}&before=${state.messages[0].t}`);
  if (sn !== state.sn) return;
  $("older").hidden = older.length < 200;
  state.messages = older.concat(state.messages);
  drawChat();
}

// How much the toy shown talked each day the history keeps (the rule the sensors use).
async function loadDays() {
  const sn = state.sn;
  const list = $("day-list");
  if (!sn || !state.history) return list.replaceChildren();
  let days;
  try {
    days = await api(`api/toys/${encodeURIComponent(sn)}/days`);
  } catch (e) {
    return list.replaceChildren(row([String(e.message)]));
  }
  if (sn !== state.sn) return;
  if (!days.length) return list.replaceChildren(row(["Nothing said yet."]));
  const named = (d) => new Date(`${d}T12:00:00`).toLocaleDateString([], { weekday: "short", month: "short", day: "numeric" });
  list.replaceChildren(...days.map((d) => {
    const tr = row([named(d.day), d.exchanges, `${d.talk_minutes} min`], d.day);
    const b = el("button", "forget", "Delete");
    b.type = "button";
    b.setAttribute("aria-label", `Delete ${named(d.day)}`);
    b.addEventListener("click", () => forgetDay(d.day));
    const td = el("td");
    td.append(b);
    tr.append(td);
    return tr;
  }));
}

function row(cells, key) {
  const tr = el("tr");
  if (key) tr.dataset.day = key;
  for (const c of cells) tr.append(el("td", null, c));
  return tr;
}

async function search() {
  const q = $("search").value.trim();
  const mine = ++state.searches;
  const results = $("results");
  if (!q) {
    results.replaceChildren();
    results.hidden = true;
    return;
  }
  // A newer search cancels the one before: the bridge stops it when its request goes.
  if (state.searching) state.searching.abort();
  const controller = new AbortController();
  state.searching = controller;
  let found;
  try {
    found = await api(`api/search?q=${encodeURIComponent(q)}`, { signal: controller.signal });
  } catch (e) {
    if (mine !== state.searches) return; // cancelled by a newer search
    results.replaceChildren(el("h2", null, String(e.message)));
    results.hidden = false;
    return;
  }
  if (mine !== state.searches) return; // a newer search is under way
  results.replaceChildren(el("h2", null, found.length ? `Found ${found.length}` : "Nothing found"));
  for (const f of found) results.append(message(f, f.sn));
  results.hidden = false;
}

// Deleting: the bridge says first what would go, the parent confirms in those words,
// then it goes for good (the search, the day counters and Home Assistant's Heard and
// Said follow). `words` puts what would go into the question.
const exchanges = (n) => `${n} exchange${n === 1 ? "" : "s"}`;
const longDay = (d) => new Date(`${d}T12:00:00`).toLocaleDateString([], { day: "numeric", month: "long" });

async function forget(query, words) {
  const error = $("forget-error");
  try {
    const what = await api(`api/forget?${query}`);
    if (!what.sentences) {
      error.textContent = "Nothing to delete: it is gone already.";
      error.hidden = false;
      return;
    }
    if (!confirm(`${words(what)} This cannot be undone.`)) return;
    await api(`api/forget?${query}`, { method: "POST", headers: { "X-FoloToy-Page": "forget" } });
    error.hidden = true;
  } catch (e) {
    error.textContent = String(e.message).replace(/^[^:]*: \d+ /, "");
    error.hidden = false;
  }
  await loadChat(true);
}

const toyQuery = () => `sn=${encodeURIComponent(state.sn)}`;

function forgetExchange(m) {
  const what = m.kind === "heard" ? `“${m.text.slice(0, 60)}” and its answer` : "this answer";
  const recording = m.recording_id === undefined ? "" : `&recording=${m.recording_id}`;
  forget(`${toyQuery()}&exchange=${m.t}${recording}`, (w) =>
    `Delete the exchange of ${toyName(state.sn)} at ${time(m.t)} on ${day(m.t)} (${what}, ${w.sentences} sentence${w.sentences === 1 ? "" : "s"})?`);
}

function forgetDay(d) {
  forget(`${toyQuery()}&day=${d}`, (w) => `Delete ${exchanges(w.exchanges)} of ${toyName(state.sn)} on ${longDay(d)}?`);
}

function forgetToy() {
  if (!state.sn) return;
  forget(toyQuery(), (w) => `Delete all ${exchanges(w.exchanges)} of ${toyName(state.sn)}, every day kept?`);
}

function forgetEverything() {
  forget("everything=1", (w) =>
    `Delete every conversation kept, ${exchanges(w.exchanges)} of ${w.toys.length} toy${w.toys.length === 1 ? "" : "s"} (${w.toys.map(toyName).join(", ")})?`);
}

function card(title, rows) {
  const c = el("div", "card");
  c.append(el("strong", null, title));
  const dl = el("dl");
  for (const [k, v, cls] of rows) dl.append(el("dt", null, k), el("dd", cls, v));
  c.append(dl);
  return c;
}

const SIDES = { both: "child and toy", child: "child only", toy: "toy only" };

function drawWatchWords(list) {
  const item = (w, i) => {
    const li = el("li", null);
    li.append(el("span", "phrase", w.phrase), el("span", "side", SIDES[w.side] || w.side));
    if (i !== undefined) {
      const remove = el("button", "remove", "Remove");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove ${w.phrase}`);
      remove.addEventListener("click", () => saveWatchWords(state.watch.page.filter((_, j) => j !== i)));
      li.append(remove);
    }
    return li;
  };
  $("watch-page").replaceChildren(...list.page.map(item));
  if (!list.page.length) $("watch-page").replaceChildren(el("li", "note", "None yet."));
  $("watch-configured").replaceChildren(...list.configured.map((w) => item(w)));
  if (!list.configured.length) $("watch-configured").replaceChildren(el("li", "note", "None."));
  drawLists();
}

// The parent's choice of the ready lists, as the bridge takes it: each list's
// toggles and the phrases switched off.
function listChoices() {
  const choices = {};
  for (const l of state.watch.lists || []) {
    const off = l.phrases.filter((p) => !p.on).map((p) => p.phrase);
    if (l.all || l.toys.length || off.length) choices[l.key] = { all: l.all, toys: l.toys, off };
  }
  return choices;
}

function checkbox(label, checked, onChange, cls) {
  const box = el("label", cls || "check");
  const input = el("input");
  input.type = "checkbox";
  input.checked = checked;
  input.addEventListener("change", () => onChange(input.checked));
  box.append(input, el("span", null, label));
  return box;
}

function drawLists() {
  const lists = state.watch.lists || [];
  // A list whose phrases are open stays open when drawn anew.
  const open = new Set([...document.querySelectorAll("#watch-lists details[open]")].map((d) => d.parentElement.dataset.list));
  $("watch-lists").replaceChildren(...lists.map((l) => {
    const c = el("div", "card list");
    c.dataset.list = l.key;
    c.append(el("h3", null, l.title));
    if (l.sides === "child") c.append(el("p", "note", "Watched in the child's words only."));
    const change = (edit) => {
      const choices = listChoices();
      const mine = choices[l.key] || { all: false, toys: [], off: [] };
      edit(mine);
      choices[l.key] = mine;
      saveLists(choices);
    };
    const toggles = el("div", "toggles");
    toggles.append(checkbox("All toys", l.all, (on) => change((m) => { m.all = on; })));
    for (const t of state.toys) {
      toggles.append(checkbox(t.name || t.sn, l.all || l.toys.includes(t.sn), (on) => change((m) => {
        m.toys = on ? m.toys.concat([t.sn]) : m.toys.filter((s) => s !== t.sn);
      }), "check toy"));
      // On for every toy, each toy's box shows it and waits.
      toggles.lastChild.querySelector("input").disabled = l.all;
    }
    c.append(toggles);
    const off = l.phrases.filter((p) => !p.on).length;
    const details = el("details");
    details.open = open.has(l.key);
    details.append(el("summary", null, `${l.phrases.length} phrases${off ? `, ${off} switched off` : ""}`));
    const ul = el("ul", "phrases");
    for (const p of l.phrases) {
      const li = el("li");
      li.append(checkbox(p.phrase, p.on, (on) => change((m) => {
        m.off = on ? m.off.filter((x) => x !== p.phrase) : m.off.concat([p.phrase]);
      }), "check phrase"));
      li.lang = p.language;
      ul.append(li);
    }
    details.append(ul);
    c.append(details);
    return c;
  }));
}

async function saveLists(choices) {
  const error = $("lists-error");
  try {
    const list = await api("api/watch_lists", {
      method: "PUT",
      headers: { "Content-Type": "application/json", "X-FoloToy-Page": "watch-lists" },
      body: JSON.stringify(choices),
    });
    error.hidden = true;
    state.watch = list;
    drawWatchWords(list);
    await loadChat(true);
  } catch (e) {
    error.textContent = String(e.message).replace(/^[^:]*: \d+ /, "");
    error.hidden = false;
    drawLists();
  }
}

// The page's own list is sent whole; the bridge takes it or says why not, and the
// messages shown are flagged anew.
async function saveWatchWords(page) {
  const error = $("watch-error");
  try {
    const list = await api("api/watch_words", {
      method: "PUT",
      headers: { "Content-Type": "application/json", "X-FoloToy-Page": "watch-words" },
      body: JSON.stringify(page),
    });
    error.hidden = true;
    state.watch = list;
    drawWatchWords(list);
    await loadChat(true);
    return true;
  } catch (e) {
    error.textContent = String(e.message).replace(/^[^:]*: \d+ /, "");
    error.hidden = false;
    return false;
  }
}

// A toy deleted in Home Assistant, back in at a parent's word: the bridge adds it at once
// (or says why not), and the lists are drawn anew.
async function letBackIn(sn) {
  if (!confirm(`Let ${sn} back in? It comes back in Home Assistant now, as a new device.`)) return;
  const error = $("kept-out-error");
  try {
    await api(`api/toys/${encodeURIComponent(sn)}/let_in`, { method: "POST", headers: { "X-FoloToy-Page": "let-in" } });
    error.hidden = true;
  } catch (e) {
    error.textContent = String(e.message).replace(/^[^:]*: \d+ /, "");
    error.hidden = false;
  }
  await loadStatus();
}

function keptOutCard(k) {
  const c = card(k.sn, [
    ["Deleted", k.deleted_ms ? `${day(k.deleted_ms)} ${time(k.deleted_ms)}` : "before the bridge kept the time"],
  ]);
  const b = el("button", "let-in", "Let back in");
  b.type = "button";
  b.setAttribute("aria-label", `Let ${k.sn} back in`);
  b.addEventListener("click", () => letBackIn(k.sn));
  c.append(b);
  return c;
}

async function loadStatus() {
  const s = await api("api/status");
  const toysChanged = JSON.stringify(s.toys.map((t) => [t.sn, t.name])) !== JSON.stringify(state.toys.map((t) => [t.sn, t.name]));
  state.toys = s.toys;
  if (JSON.stringify(s.watch_words) !== JSON.stringify(state.watch)) {
    state.watch = s.watch_words;
    drawWatchWords(s.watch_words);
  } else if (toysChanged) {
    drawLists();
  }
  const select = $("toy");
  const chosen = state.sn || (s.toys[0] && s.toys[0].sn);
  select.replaceChildren(...s.toys.map((t) => {
    const o = el("option", null, t.name ? `${t.name} (${t.sn})` : t.sn);
    o.value = t.sn;
    return o;
  }));
  if (chosen) select.value = chosen;
  const historyChanged = state.history !== s.history;
  state.history = s.history;
  $("clear").hidden = !s.history;
  $("clear-all").hidden = !s.history;
  if (chosen !== state.sn) {
    state.sn = chosen;
    await loadChat(true);
  }
  $("toy-list").replaceChildren(...s.toys.map((t) => card(t.name || t.sn, [
    ["Serial number", t.sn],
    ["Last activity", t.last_activity_ms ? `${day(t.last_activity_ms)} ${time(t.last_activity_ms)}` : "never"],
    ...t.settings.map(([k, v]) => [k, v]),
    ["Last command", t.last_command || "none yet"],
  ])));
  $("notices").replaceChildren(...s.notices.map((n) => el("p", "notice", `${day(n.t)} ${time(n.t)}: ${n.text}`)));
  const keptOut = $("kept-out");
  keptOut.replaceChildren(...s.kept_out.map(keptOutCard));
  if (!s.kept_out.length) keptOut.replaceChildren(el("p", "note", "None."));
  const refused = $("refused");
  refused.replaceChildren(...s.refused.map((r) => card(r.sn, [["Why", r.reason]])));
  if (!s.refused.length) refused.replaceChildren(el("p", "note", "None."));
  $("connection-list").replaceChildren(...s.connections.map((c) => card(c.name, [
    ["State", c.up ? "up" : "down", c.up ? "up" : "down"],
    ["Since", c.since_ms ? `${day(c.since_ms)} ${time(c.since_ms)}` : "start"],
    ["Last error", c.last_error || "none"],
  ])));
  if (historyChanged) drawChat();
}

// New sentences: the page asks the bridge "anything after N?", and the bridge answers
// when there is (or after 25 s with nothing). Whole answers, not an event stream: Home
// Assistant's ingress before 2026.3 compressed event streams and held them back. Each time
// it connects (again), the chat is loaded anew: nothing said meanwhile is missed. The page
// says it is live (for its tests) once it is waiting for what comes next.
async function live() {
  let seq = null;
  for (;;) {
    try {
      const u = await api(`api/updates${seq === null ? "" : `?after=${seq}`}`);
      const reload = seq === null || u.missed || u.toys.includes(state.sn);
      seq = u.seq;
      document.body.dataset.live = "1";
      if (reload) loadChat(false);
    } catch (e) {
      delete document.body.dataset.live;
      seq = null;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

function tabs() {
  for (const b of document.querySelectorAll("nav button")) {
    b.addEventListener("click", () => {
      for (const other of document.querySelectorAll("nav button")) other.classList.toggle("active", other === b);
      for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== b.dataset.tab;
      // What a tab shows is the bridge's now, not up to 5 s old.
      loadStatus().catch(() => {});
    });
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  tabs();
  $("toy").addEventListener("change", (e) => { state.sn = e.target.value; loadChat(true); });
  $("flagged").addEventListener("change", (e) => { state.flagged = e.target.checked; loadChat(true); });
  $("days").addEventListener("toggle", () => { if ($("days").open) loadDays(); });
  $("watch-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const phrase = $("watch-phrase").value.trim();
    if (!phrase) return;
    if (await saveWatchWords(state.watch.page.concat([{ phrase, side: $("watch-side").value }]))) {
      $("watch-phrase").value = "";
    }
  });
  let typing;
  $("search").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(search, 250); });
  $("clear").addEventListener("click", forgetToy);
  $("clear-all").addEventListener("click", forgetEverything);
  $("older").addEventListener("click", loadOlder);
  await loadStatus();
  live();
  setInterval(loadStatus, 5000);
});
