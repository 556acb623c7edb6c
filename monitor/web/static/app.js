// finmon dashboard: one server-sent event per second carries the whole (filtered) board.
// Every value from the stream is written with textContent or an SVG attribute, never as HTML.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const state = {
    filters: { topic: "", ticker: "", sentiment: "" },
    source: null,
    labels: { topics: [], sentiments: ["negative", "neutral", "positive"] },
    reviewed: new Map(),
    refused: new Map(), // document id -> why its review was not saved, kept across re-renders
    editing: null,
    last: null,
  };
  window.finmonLoadedAt = Date.now(); // tests check the page never reloads
  if (new URLSearchParams(location.search).has("token")) {
    // the server has set its cookie: keep the token out of the address bar, history and bookmarks
    const url = new URL(location.href);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }
  const pct = (x) => `${Math.round((Number(x) || 0) * 100)}%`;
  // why an alert fired, as alerts.formats.explain words it
  const reasonText = (a) => {
    const p = `p=${Number(a.p_value ?? 1).toExponential(1)}`;
    if (a.status === "resolved") {
      return `back to usual: ${pct(a.observed_negative_share)} negative vs ${pct(a.baseline_negative_share)} usual (${a.negative_count} of ${a.count} stories); it fired on ${a.reason || "negative_share"}`;
    }
    if (a.reason === "negative_volume") {
      const usual = a.baseline_negative_count == null ? "?" : Number(a.baseline_negative_count).toFixed(1);
      return `negative_volume: ${a.negative_count} negative stories vs ${usual} usual a window (${pct(a.observed_negative_share)} of ${a.count}, ${p})`;
    }
    return `negative_share: ${pct(a.observed_negative_share)} negative vs ${pct(a.baseline_negative_share)} usual (${a.negative_count} of ${a.count} stories, ${Number(a.lift || 0).toFixed(1)}x, ${p})`;
  };
  const clock = (iso) => {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? "" : d.toISOString().slice(11, 19);
  };

  function query() {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(state.filters)) if (v) params.set(k, v);
    return params.toString();
  }

  function connect() {
    if (state.source) state.source.close();
    const source = new EventSource(`/api/events?${query()}`);
    state.source = source;
    source.addEventListener("snapshot", (event) => {
      setStatus("live");
      state.last = JSON.parse(event.data);
      render(state.last);
    });
    source.onerror = () => setStatus("reconnecting");
  }

  function setStatus(text) {
    const node = $("status");
    node.dataset.state = text;
    node.textContent = text;
  }

  function chart(points, cls, width, height) {
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: cls, preserveAspectRatio: "none" });
    if (!points.length) return root;
    const most = Math.max(1, ...points.map((p) => p.total));
    const step = points.length > 1 ? width / (points.length - 1) : width;
    const x = (i) => (points.length > 1 ? i * step : width / 2);
    points.forEach((p, i) => {
      const h = (p.total / most) * height * 0.4;
      root.appendChild(svg("rect", { class: "vol", x: x(i) - step * 0.35, y: height - h, width: Math.max(1, step * 0.7), height: h }));
    });
    const y = (p) => height - 2 - p.negative_share * (height - 4);
    // one window so far: a level line across the chart rather than an invisible dot
    const xy = points.length > 1 ? points.map((p, i) => [x(i), y(p)]) : [[0, y(points[0])], [width, y(points[0])]];
    const line = xy.map(([px, py], i) => `${i ? "L" : "M"}${px.toFixed(1)} ${py.toFixed(1)}`).join(" ");
    const last = xy[xy.length - 1][0].toFixed(1);
    root.appendChild(svg("path", { class: "area", d: `${line} L${last} ${height} L${xy[0][0].toFixed(1)} ${height} Z` }));
    root.appendChild(svg("path", { class: "spark", d: line }));
    return root;
  }

  function countsBar(counts) {
    const bar = el("div", "bar");
    const total = state.labels.sentiments.reduce((n, s) => n + (counts[s] || 0), 0) || 1;
    for (const s of state.labels.sentiments) {
      const part = el("span", s);
      part.style.width = `${(100 * (counts[s] || 0)) / total}%`;
      part.title = `${s}: ${counts[s] || 0}`;
      bar.appendChild(part);
    }
    return bar;
  }

  function render(snap) {
    for (const [id, review] of Object.entries(snap.reviews || {})) state.reviewed.set(id, review);
    state.labels = snap.labels || state.labels;
    renderHeader(snap);
    renderFilters(snap);
    renderTicker(snap);
    renderGrid(snap);
    renderAgreement(snap);
    renderAlerts(snap);
    if (state.editing === null) renderFeed(snap);
  }

  function renderHeader(snap) {
    const m = snap.model || {};
    const seen = Object.keys(m.versions_seen || {});
    $("model").textContent = `model ${m.version || "?"}` + (seen.length > 1 ? ` (${seen.length} versions seen)` : "");
    $("throughput").textContent = `${Number(snap.throughput || 0).toFixed(1)} docs/s`;
    $("total").textContent = `${snap.scored_total || 0} scored`;
    $("window-label").textContent = `per ${snap.window} window, newest right; bars: volume`;
  }

  function renderFilters(snap) {
    const select = $("f-topic");
    if (select.options.length <= 1 && state.labels.topics.length) {
      for (const topic of state.labels.topics) select.appendChild(el("option", null, topic));
      select.value = state.filters.topic;
    }
    const list = $("tickers");
    list.replaceChildren(...(snap.tickers || []).map((t) => Object.assign(el("option"), { value: t })));
  }

  function renderTicker(snap) {
    const view = $("ticker-view");
    view.hidden = !snap.ticker;
    if (!snap.ticker) return;
    const points = snap.ticker.points || [];
    $("ticker-title").textContent = `${snap.ticker.key}: negative share per ${snap.window} window`;
    $("ticker-chart").replaceChildren(chart(points, "big-chart", 600, 160));
    const latest = points[points.length - 1];
    $("ticker-note").textContent = latest
      ? `latest window ${clock(latest.start)}: ${latest.total} documents, ${pct(latest.negative_share)} negative`
      : "no windows for this ticker yet";
  }

  function renderGrid(snap) {
    const grid = $("grid");
    if (!snap.topics.length) {
      const filtered = Object.values(state.filters).some((v) => v);
      const note = filtered ? "no matches: no windows for these filters yet" : "waiting for the first windows…";
      grid.replaceChildren(el("p", "muted empty", note));
      return;
    }
    const cards = snap.topics.map((topic) => {
      const points = topic.points || [];
      const latest = points[points.length - 1] || { negative_share: 0, total: 0, counts: {} };
      const card = el("div", "card");
      if (latest.total >= 5 && latest.negative_share >= 0.5) card.classList.add("hot");
      else if (latest.total >= 5 && latest.negative_share >= 0.45) card.classList.add("warm");
      card.dataset.topic = topic.key;
      card.appendChild(el("div", "name", topic.key));
      card.appendChild(el("div", "share", pct(latest.negative_share)));
      const c = latest.counts || {};
      card.appendChild(el("div", "sub", `${latest.total} docs · ${c.negative || 0} neg / ${c.neutral || 0} neu / ${c.positive || 0} pos`));
      card.appendChild(countsBar(c));
      card.appendChild(chart(points, "spark-chart", 180, 46));
      card.addEventListener("click", () => setFilter("topic", state.filters.topic === topic.key ? "" : topic.key));
      return card;
    });
    grid.replaceChildren(...cards);
  }

  function renderAgreement(snap) {
    const box = $("agreement");
    const rows = [];
    for (const [head, labels] of Object.entries(snap.agreement || {})) {
      for (const [label, row] of Object.entries(labels)) rows.push([head, label, row]);
    }
    if (!rows.length) return;
    const table = el("table");
    const head = el("tr");
    for (const h of ["model said", "", "reviewed", "kept", "agreement"]) head.appendChild(el("th", null, h));
    table.appendChild(head);
    for (const [headName, label, row] of rows) {
      const tr = el("tr");
      tr.append(el("td", null, headName), el("td", null, label), el("td", null, row.reviewed), el("td", null, row.agreed));
      tr.appendChild(el("td", null, row.rate === null ? "-" : pct(row.rate)));
      table.appendChild(tr);
    }
    box.replaceChildren(table);
  }

  function renderAlerts(snap) {
    const box = $("alerts");
    const alerts = snap.alerts.recent || [];
    if (!alerts.length) {
      box.replaceChildren(el("p", "muted", "no alerts"));
      return;
    }
    box.replaceChildren(
      ...alerts.slice(0, 8).map((a) => {
        const card = el("div", `alert ${a.status}`);
        const head = el("div", "head");
        head.append(el("span", "key", `${a.scope} ${a.key}`), el("span", `pill ${a.status === "firing" ? "negative" : "neutral"}`, a.status));
        card.appendChild(head);
        const win = a.window || {};
        card.appendChild(el("div", "why", reasonText(a)));
        const facts = `${a.count} docs · ${a.severity || ""} · ${clock(win.start)}`;
        card.appendChild(el("div", "facts", facts));
        const list = el("ul");
        for (const h of (a.headlines || []).slice(0, 3)) {
          const item = el("li");
          item.appendChild(el("span", "title", h.title));
          item.appendChild(reviewButtons({ id: h.id, title: h.title, topic: a.scope === "topic" ? a.key : null, sentiment: "negative", model_version: a.model_version }, item));
          list.appendChild(item);
        }
        card.appendChild(list);
        return card;
      }),
    );
  }

  function renderFeed(snap) {
    const feed = $("feed");
    const empty = !(snap.feed || []).length && Object.values(state.filters).some((v) => v);
    $("feed-note").textContent = empty ? "no matches for these filters" : "a sample of the latest scored headlines";
    feed.replaceChildren(
      ...(snap.feed || []).map((doc) => {
        const item = el("li");
        item.dataset.id = doc.id;
        item.dataset.topic = doc.topic;
        if (doc.lang) item.dataset.lang = doc.lang;
        item.lang = doc.lang === "zh" ? "zh-Hans" : doc.lang || "";
        const meta = el("div", "meta");
        meta.append(el("span", null, clock(doc.published_at)), el("span", `pill ${doc.sentiment}`, doc.sentiment));
        meta.append(el("span", null, Number(doc.score).toFixed(2)), el("span", null, doc.topic));
        if (doc.lang && doc.lang !== "en") meta.appendChild(el("span", "lang", doc.lang));
        for (const t of doc.tickers || []) {
          const chip = el("span", "chip", t);
          chip.addEventListener("click", () => setFilter("ticker", t));
          meta.appendChild(chip);
        }
        meta.appendChild(reviewButtons({ id: doc.id, title: doc.title, topic: doc.topic, sentiment: doc.sentiment, model_version: doc.model_version }, item));
        item.appendChild(meta);
        item.appendChild(el("span", "title", doc.title));
        return item;
      }),
    );
  }

  function reviewButtons(doc, container) {
    const box = el("span", "actions");
    const review = state.reviewed.get(doc.id);
    if (review) {
      const mark = el("span", "reviewed", review.verdict);
      if (review.analyst) mark.appendChild(el("span", "by", ` · ${review.analyst}`));
      box.appendChild(mark);
      return box;
    }
    const error = el("span", "error", state.refused.get(doc.id));
    const keep = el("button", "confirm", "✓");
    keep.type = "button";
    keep.title = "the model is right";
    keep.addEventListener("click", () => submit(doc, doc.topic, doc.sentiment, error));
    const fix = el("button", "correct", "✎");
    fix.type = "button";
    fix.title = "the model is wrong: give the right labels";
    fix.addEventListener("click", () => openForm(doc, container));
    box.append(keep, fix, error);
    return box;
  }

  function openForm(doc, container) {
    if (container.querySelector("form")) return;
    state.editing = doc.id;
    const form = el("form", "review");
    const topic = el("select");
    topic.name = "topic";
    for (const t of state.labels.topics) topic.appendChild(el("option", null, t));
    topic.value = doc.topic || "General News / Opinion";
    const sentiment = el("select");
    sentiment.name = "sentiment";
    for (const s of state.labels.sentiments) sentiment.appendChild(el("option", null, s));
    sentiment.value = doc.sentiment;
    const save = el("button", null, "save correction");
    save.type = "submit";
    const cancel = el("button", null, "cancel");
    cancel.type = "button";
    const error = el("span", "error");
    cancel.addEventListener("click", () => {
      form.remove();
      state.editing = null;
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit(doc, topic.value, sentiment.value, error).then((ok) => {
        if (ok) {
          form.remove();
          state.editing = null;
          if (state.last) render(state.last);
        }
      });
    });
    form.append(topic, sentiment, save, cancel, error);
    container.appendChild(form);
  }

  async function submit(doc, topic, sentiment, error) {
    const body = {
      id: doc.id,
      text: doc.title,
      model_topic: doc.topic,
      model_sentiment: doc.sentiment,
      model_version: doc.model_version,
      topic,
      sentiment,
    };
    try {
      const response = await fetch("/api/feedback", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(answer.error || `${response.status} ${response.statusText}`);
      state.reviewed.set(doc.id, { verdict: answer.verdict, analyst: answer.analyst });
      state.refused.delete(doc.id);
      if (state.last && state.editing === null) render(state.last);
      return true;
    } catch (exc) {
      // the feed may have been redrawn since the click: the row drawn next shows it too
      state.refused.set(doc.id, `not saved: ${exc.message}`);
      error.textContent = state.refused.get(doc.id);
      if (state.last && state.editing === null) renderFeed(state.last);
      return false;
    }
  }

  function setFilter(name, value) {
    state.filters[name] = value;
    $(`f-${name}`).value = value;
    connect();
  }

  $("f-topic").addEventListener("change", (e) => setFilter("topic", e.target.value));
  $("f-sentiment").addEventListener("change", (e) => setFilter("sentiment", e.target.value));
  $("f-ticker").addEventListener("change", (e) => setFilter("ticker", e.target.value.trim().toUpperCase()));
  $("f-clear").addEventListener("click", () => {
    for (const name of Object.keys(state.filters)) setFilter(name, "");
  });
  // who the reviews are signed with: the server says, from the login; the page cannot choose
  fetch("/api/whoami")
    .then((r) => (r.ok ? r.json() : null))
    .then((who) => {
      const box = $("who");
      box.dataset.canReview = String(Boolean(who && who.can_review));
      box.textContent = who && who.analyst ? `analyst ${who.analyst}` : "read only: sign in with your analyst token to review";
    })
    .catch(() => {});
  connect();
})();
