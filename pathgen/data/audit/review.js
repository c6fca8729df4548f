// pathgen caption audit page (served by `pathgen audit serve`).
// Every text from the server is put into the page with textContent, never as HTML.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const PARTS = ["caption", "describe", "revise"];
  const ZOOMS = ["fit", 1, 2, 4, 8];
  const S = {
    m: null, items: [], idx: 0, reviewer: "", saved: {}, focus: { part: "caption", i: 0 },
    zoom: "fit", pending: 0, queue: Promise.resolve(), typingTimer: null,
  };

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  async function api(method, url, body) {
    const opt = { method, headers: {} };
    if (body !== undefined) {
      opt.headers["Content-Type"] = "application/json";
      opt.body = JSON.stringify(body);
    }
    const r = await fetch(url, opt);
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (!r.ok) throw new Error((data && data.error) || `${r.status} ${r.statusText}`);
    return data;
  }

  function status(text, kind) {
    const s = $("status");
    s.textContent = text;
    s.className = kind || "";
  }

  function setPending(delta) {
    S.pending += delta;
    document.body.dataset.pending = String(S.pending);
  }

  // Posts go one after another, so the answers arrive in the order the verdicts were given.
  function post(url, body) {
    setPending(1);
    status("saving…");
    const run = S.queue.then(() => api("POST", url, body));
    S.queue = run.catch(() => null);
    return run.finally(() => setPending(-1));
  }

  const key = (what) => `pathgen-audit:${S.m.audit_id}:${what}`;
  const item = () => S.items[S.idx];
  const entryOf = (it) => S.saved[it.id] || {};
  const verdictsOf = (it, part) => entryOf(it)[part] || {};

  function itemDone(it) {
    const n = (it.sentences.caption || []).length;
    const v = verdictsOf(it, "caption");
    return n > 0 && Object.keys(v).length >= n;
  }

  function firstOpen() {
    const i = S.items.findIndex((it) => !itemDone(it));
    return i < 0 ? 0 : i;
  }

  async function start(name) {
    name = (name || "").trim();
    if (!name) { status("enter your name first", "error"); return; }
    let v;
    try {
      v = await api("GET", "/api/verdicts?reviewer=" + encodeURIComponent(name));
    } catch (e) {
      status(e.message, "error");
      return;
    }
    S.reviewer = v.reviewer;
    S.saved = v.items || {};
    localStorage.setItem("pathgen-audit:reviewer", S.reviewer);
    $("reviewer").value = S.reviewer;
    $("whoami").textContent = "Reviewer: " + S.reviewer;
    $("intro").hidden = true;
    $("review").hidden = false;
    const stored = parseInt(localStorage.getItem(key("idx:" + S.reviewer)), 10);
    const idx = Number.isInteger(stored) && stored >= 0 && stored < S.items.length ? stored : firstOpen();
    status(Object.keys(S.saved).length ? "resumed: your saved verdicts are loaded" : "ready", "ok");
    show(idx);
  }

  function show(idx) {
    if (!S.items.length) return;
    saveCorrected();
    S.idx = Math.max(0, Math.min(S.items.length - 1, idx));
    localStorage.setItem(key("idx:" + S.reviewer), String(S.idx));
    const it = item();
    $("item-pos").textContent = `Item ${S.idx + 1} of ${S.items.length}`;
    $("item-meta").textContent = `${it.stratum} · ${it.slide_id} (${it.x}, ${it.y})`;
    const img = $("patch");
    img.src = it.image_url;
    for (const part of PARTS) renderPart(it, part);
    const c = $("corrected");
    c.value = entryOf(it).corrected || "";
    c.dataset.saved = c.value;
    c.dataset.item = it.id;
    S.focus = { part: "caption", i: 0 };
    updateFocus();
    updateProgress();
    $("prev").disabled = S.idx === 0;
    $("next").disabled = S.idx === S.items.length - 1;
    if (S.idx + 1 < S.items.length) new Image().src = S.items[S.idx + 1].image_url;
  }

  function renderPart(it, part) {
    const ol = $("part-" + part);
    ol.replaceChildren();
    const sents = it.sentences[part] || [];
    if (!sents.length) {
      ol.appendChild(el("li", { class: "empty" }, part === "caption" ? "(no caption)" : "(no text)"));
      return;
    }
    sents.forEach((text, i) => {
      const li = el("li", { class: "sentence", "data-part": part, "data-index": String(i) });
      li.appendChild(el("span", { class: "text" }, text));
      const group = el("span", { class: "verdicts", role: "group", "aria-label": "verdict" });
      for (const v of S.m.verdicts) {
        const b = el("button", {
          type: "button", class: "verdict v-" + v.value, "data-verdict": v.value,
          title: `${v.label} (${v.key})`, "aria-pressed": "false",
        }, `${v.key} ${v.label}`);
        b.addEventListener("click", (ev) => {
          ev.stopPropagation();
          S.focus = { part, i };
          updateFocus();
          give(v.value, false, true);
        });
        group.appendChild(b);
      }
      li.appendChild(group);
      li.addEventListener("click", () => { S.focus = { part, i }; updateFocus(); });
      ol.appendChild(li);
    });
    paintPart(it, part);
  }

  function paintPart(it, part) {
    const given = verdictsOf(it, part);
    for (const li of $("part-" + part).querySelectorAll("li.sentence")) {
      const v = given[li.dataset.index] || "";
      li.dataset.verdict = v;
      for (const b of li.querySelectorAll("button.verdict")) {
        b.setAttribute("aria-pressed", String(b.dataset.verdict === v));
      }
    }
  }

  function focusables() {
    const parts = $("agents").open ? PARTS : ["caption"];
    const out = [];
    for (const part of parts) (item().sentences[part] || []).forEach((_, i) => out.push({ part, i }));
    return out;
  }

  function focusedLi() {
    return document.querySelector(`#part-${S.focus.part} li[data-index="${S.focus.i}"]`);
  }

  function updateFocus() {
    for (const li of document.querySelectorAll("li.sentence.focused")) li.classList.remove("focused");
    const li = focusedLi();
    if (li) {
      li.classList.add("focused");
      li.scrollIntoView({ block: "nearest" });
    }
  }

  function move(step) {
    const all = focusables();
    if (!all.length) return;
    let at = all.findIndex((f) => f.part === S.focus.part && f.i === S.focus.i);
    at = at < 0 ? 0 : Math.max(0, Math.min(all.length - 1, at + step));
    S.focus = all[at];
    updateFocus();
  }

  function updateProgress() {
    const done = S.items.filter(itemDone).length;
    $("progress").textContent = `${done} of ${S.items.length} captions fully judged`;
  }

  function give(verdict, advance, toggle) {
    const it = item();
    const { part, i } = S.focus;
    if (!(it.sentences[part] || []).length) return;
    const entry = S.saved[it.id] || (S.saved[it.id] = {});
    const given = entry[part] || (entry[part] = {});
    const before = given[i];
    const value = toggle && before === verdict ? null : verdict;
    if (value === null) delete given[i]; else given[i] = value;
    paintPart(it, part);
    updateProgress();
    post("/api/verdict", { reviewer: S.reviewer, item: it.id, part, sentence: i, verdict: value })
      .then((r) => {
        S.saved[it.id] = r.entry;
        status("saved", "ok");
      })
      .catch((e) => {
        const g = (S.saved[it.id] || {})[part] || {};
        if (before === undefined) delete g[i]; else g[i] = before;
        status("NOT saved: " + e.message, "error");
      })
      .finally(() => {
        if (item() === it) paintPart(it, part);
        updateProgress();
      });
    if (advance) move(1);
  }

  function saveCorrected() {
    clearTimeout(S.typingTimer);
    const c = $("corrected");
    const id = c.dataset.item;
    if (!id || c.value === c.dataset.saved) return;
    const text = c.value;
    c.dataset.saved = text;
    post("/api/corrected", { reviewer: S.reviewer, item: id, corrected: text })
      .then((r) => { S.saved[id] = r.entry; status("saved the corrected caption", "ok"); })
      .catch((e) => { c.dataset.saved = ""; status("corrected caption NOT saved: " + e.message, "error"); });
  }

  function setZoom(z) {
    S.zoom = z;
    const img = $("patch");
    const w = img.naturalWidth;
    img.classList.toggle("fit", z === "fit");
    img.classList.toggle("pixelated", z !== "fit" && z > 1);
    img.style.width = z === "fit" || !w ? "" : `${w * z}px`;
    img.style.maxWidth = z === "fit" ? "" : "none";
    const fitScale = w ? Math.min(img.clientWidth / w, img.clientHeight / img.naturalHeight) : 1;
    const shown = z === "fit" ? Math.round(100 * fitScale) : z * 100;
    $("zoom-label").textContent = z === "fit" ? `fit (${shown}%)` : `${shown}%`;
    $("img-size").textContent = w ? `${w}×${img.naturalHeight} px` : "";
    for (const b of document.querySelectorAll("#zoom-bar button")) {
      b.classList.toggle("active", b.dataset.zoom === String(z));
    }
  }

  function zoomStep(step) {
    const at = ZOOMS.indexOf(S.zoom);
    setZoom(ZOOMS[Math.max(0, Math.min(ZOOMS.length - 1, at + step))]);
  }

  function zoomAt(ev) {
    const box = $("image-box");
    const img = $("patch");
    const fx = (ev.clientX - img.getBoundingClientRect().left) / img.clientWidth;
    const fy = (ev.clientY - img.getBoundingClientRect().top) / img.clientHeight;
    zoomStep(ev.shiftKey ? -1 : 1);
    box.scrollLeft = fx * img.clientWidth - box.clientWidth / 2;
    box.scrollTop = fy * img.clientHeight - box.clientHeight / 2;
  }

  function onKey(ev) {
    const t = ev.target;
    if (t && (t.tagName === "TEXTAREA" || t.tagName === "INPUT")) {
      if (ev.key === "Escape" || (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && t.id === "corrected")) {
        t.blur();
        ev.preventDefault();
      }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "?") { $("help").hidden = !$("help").hidden; ev.preventDefault(); return; }
    if (ev.key === "Escape") { $("help").hidden = true; return; }
    if (!S.reviewer || $("review").hidden) return;
    const v = S.m.verdicts.find((x) => x.key === ev.key);
    if (v) { give(v.value, true, false); ev.preventDefault(); return; }
    switch (ev.key) {
      case "j": case "ArrowDown": move(1); break;
      case "k": case "ArrowUp": move(-1); break;
      case "n": case "ArrowRight": show(S.idx + 1); break;
      case "p": case "ArrowLeft": show(S.idx - 1); break;
      case "+": case "=": zoomStep(1); break;
      case "-": zoomStep(-1); break;
      case "0": setZoom("fit"); break;
      case "c": $("corrected").focus(); break;
      case "d": $("agents").open = !$("agents").open; break;
      default: return;
    }
    ev.preventDefault();
  }

  async function init() {
    $("who").addEventListener("submit", (ev) => { ev.preventDefault(); start($("reviewer").value); });
    $("help-btn").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
    $("prev").addEventListener("click", () => show(S.idx - 1));
    $("next").addEventListener("click", () => show(S.idx + 1));
    $("patch").addEventListener("load", () => setZoom(S.zoom));
    $("image-box").addEventListener("click", zoomAt);
    for (const b of document.querySelectorAll("#zoom-bar button")) {
      b.addEventListener("click", () => setZoom(b.dataset.zoom === "fit" ? "fit" : Number(b.dataset.zoom)));
    }
    const c = $("corrected");
    c.addEventListener("change", saveCorrected);
    c.addEventListener("blur", saveCorrected);
    c.addEventListener("input", () => { clearTimeout(S.typingTimer); S.typingTimer = setTimeout(saveCorrected, 1500); });
    $("agents").addEventListener("toggle", updateFocus);
    document.addEventListener("keydown", onKey);
    window.addEventListener("beforeunload", saveCorrected);
    try {
      S.m = await api("GET", "/api/manifest");
    } catch (e) {
      status("cannot load the audit: " + e.message, "error");
      return;
    }
    S.items = S.m.items;
    document.title = `caption audit: ${S.m.folder} (${S.m.n} items)`;
    const fromUrl = new URLSearchParams(location.search).get("reviewer");
    const name = fromUrl || localStorage.getItem("pathgen-audit:reviewer") || "";
    $("reviewer").value = name;
    document.body.dataset.ready = "1";
    if (name) await start(name);
  }

  document.addEventListener("DOMContentLoaded", init);
})();
