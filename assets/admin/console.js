
"use strict";
// The webcollect-shim admin console. Reads /status, /timeline, /traffic and /report every
// few seconds; opens and closes drills and reloads with the bearer token kept in this tab's
// sessionStorage. Every value from the server reaches the page as text (never as HTML).
(function () {
  const REFRESH_MS = 2000;
  const TOKEN_KEY = "webcollect-shim.admin-token";
  const DASH = "\u2013";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const SOURCES = {
    config: ["一回限り", "one-off"],
    recurring: ["定期", "recurring"],
    drill: ["ドリル", "drill"],
  };
  /// What a report is about.
  const SUBJECTS = {
    window: ["メンテナンス枠", "window"],
    drill: ["ドリル", "drill"],
    range: ["期間", "time range"],
  };
  /// A journal record's decision, in the order a report's bars stack them (bottom up).
  const DECISIONS = {
    maintenance: ["メンテ応答", "maintenance"],
    "drill-maintenance": ["ドリルのメンテ応答", "drill maintenance"],
    "would-maintain": ["擬似メンテ", "would-maintain"],
    bypass: ["バイパス", "bypass"],
    "drill-pass": ["ドリルヘッダーで通過", "drill header pass"],
    pass: ["通過", "pass"],
  };
  const VERDICTS = {
    stranded: ["取り残された注文", "stranded orders"],
    attempts_per_order: ["注文ごとの試行回数", "attempts per order"],
    leaks: ["ゲートウェイへの漏れ", "leaks to the gateway"],
    complete: ["記録の完全性", "complete records"],
  };
  /// Rows shown per report table (and offenders per verdict); the rest are counted.
  const LIST_LIMIT = 50;

  const state = {
    status: null, timeline: null, traffic: null, report: null, reportError: null,
    choices: "", selected: null,
  };

  // === Small helpers ===

  function $(id) { return document.getElementById(id); }

  function h(tag, attrs, children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function s(tag, attrs, children) {
    const e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined && v !== false) e.setAttribute(k, String(v));
    }
  }

  function append(e, children) {
    for (const c of [children].flat(Infinity)) {
      if (c === null || c === undefined) continue;
      e.append(typeof c === "object" ? c : String(c));
    }
  }

  /// Japanese label with its English beside it.
  function bi(ja, en) {
    return [ja + " ", h("span", { class: "en" }, en)];
  }

  function fill(e, children) {
    e.replaceChildren();
    append(e, children);
  }

  /// A value for display; missing ones (an older shim, a field not set) show as a dash.
  function show(v) {
    return v === null || v === undefined || v === "" ? DASH : String(v);
  }

  function field(obj, path) {
    return path.split(".").reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
  }

  // === Time ===

  const formats = new Map();

  function parts(ms, tz) {
    let f = formats.get(tz);
    if (!f) {
      f = new Intl.DateTimeFormat("en-US", {
        timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", weekday: "short",
      });
      formats.set(tz, f);
    }
    const out = {};
    for (const p of f.formatToParts(new Date(ms))) out[p.type] = p.value;
    return out;
  }

  function zone() {
    return field(state.status, "timezone") || field(state.timeline, "timezone")
      || field(state.report, "timezone") || "UTC";
  }

  /// `2020-04-20 02:30:00` in the shim's zone.
  function fmt(iso) {
    if (!iso) return DASH;
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) return show(iso);
    const p = parts(ms, zone());
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
  }

  /// `04-20 02:30`, for tables.
  function fmtShort(iso) {
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) return show(iso);
    const p = parts(ms, zone());
    return `${p.month}-${p.day} ${p.hour}:${p.minute}`;
  }

  /// `1h 23m`, `4m 05s`.
  function span(ms) {
    if (!(ms > 0)) return "0s";
    const sec = Math.round(ms / 1000);
    const d = Math.floor(sec / 86400), hh = Math.floor((sec % 86400) / 3600);
    const mm = Math.floor((sec % 3600) / 60), ss = sec % 60;
    if (d > 0) return `${d}d ${hh}h`;
    if (hh > 0) return `${hh}h ${String(mm).padStart(2, "0")}m`;
    if (mm > 0) return `${mm}m ${String(ss).padStart(2, "0")}s`;
    return `${ss}s`;
  }

  function nowMs() {
    const ms = Date.parse(field(state.status, "now") || field(state.timeline, "now"));
    return Number.isNaN(ms) ? Date.now() : ms;
  }

  /// The instant of local midnight that starts the zone's day containing `ms`.
  function midnight(ms, tz) {
    const p = parts(ms, tz);
    let guess = Date.UTC(+p.year, +p.month - 1, +p.day);
    // Two passes settle the zone offset, daylight saving included.
    for (let i = 0; i < 2; i++) {
      const q = parts(guess, tz);
      const asUtc = Date.UTC(+q.year, +q.month - 1, +q.day, +q.hour, +q.minute, +q.second);
      guess -= asUtc - Date.UTC(+p.year, +p.month - 1, +p.day);
    }
    return guess;
  }

  // === Services ===

  function covers(covering, service) {
    return service === covering || (service.startsWith(covering + "."));
  }

  function serviceLabel(svc) {
    return svc.ja ? [svc.ja + " ", h("code", {}, svc.name)] : [h("code", {}, svc.name)];
  }

  // === Server calls ===

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }

  async function call(method, path, body) {
    const headers = {};
    if (token()) headers.Authorization = "Bearer " + token();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method, headers, cache: "no-store", credentials: "omit",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    return { status: res.status, ok: res.ok, data };
  }

  function failure(res) {
    if (res.status === 401) return bi("トークンが必要です（操作欄で入力）", "A valid admin token is needed (Controls)");
    if (res.status === 403) return bi("別オリジンからの操作は拒否されました", "Refused: not the admin listener's origin");
    const why = field(res.data, "error") || "HTTP " + res.status;
    return bi("失敗しました: " + why, "failed");
  }

  function result(id, ok, message) {
    const e = $(id);
    e.className = "result " + (ok ? "ok" : "error");
    fill(e, message);
  }

  /// The report of the window or drill in force, else of the last one to end; none (404)
  /// before any has started. Its failures show in its panel only.
  function loadReport() {
    return fetch("/report", { cache: "no-store", credentials: "omit" })
      .then(async (r) => {
        if (r.status === 404) return { report: null, error: null };
        let data = null;
        try { data = await r.json(); } catch (e) { data = null; }
        if (!r.ok || !data) throw new Error(field(data, "error") || "HTTP " + r.status);
        return { report: data, error: null };
      })
      .catch((e) => ({ report: null, error: e.message }))
      .then(({ report, error }) => {
        Object.assign(state, { report, reportError: error });
        renderReport();
      });
  }

  let inFlight = null;
  let again = false;
  let timer = null;

  /// Fetches everything and redraws. Called while a fetch is running (right after a
  /// mutation), it runs once more when that one ends, so the page shows the change.
  function refresh() {
    if (inFlight) {
      again = true;
      return inFlight;
    }
    clearTimeout(timer);
    const panels = Promise.all(["/status", "/timeline", "/traffic"].map((p) =>
      fetch(p, { cache: "no-store", credentials: "omit" }).then((r) => {
        if (!r.ok) throw new Error(p + ": HTTP " + r.status);
        return r.json();
      })))
      .then(([status, timeline, traffic]) => {
        Object.assign(state, { status, timeline, traffic });
        render();
        const conn = $("conn");
        conn.className = "conn";
        fill(conn, bi("更新 " + fmt(status.real_now), "updated (real time)"));
      })
      .catch((e) => {
        const conn = $("conn");
        conn.className = "conn error";
        fill(conn, bi("シムに接続できません", "cannot reach the shim: " + e.message));
      });
    inFlight = Promise.all([panels, loadReport()])
      .finally(() => {
        inFlight = null;
        if (again) {
          again = false;
          refresh();
        } else {
          timer = setTimeout(refresh, REFRESH_MS);
        }
      });
    return inFlight;
  }

  // === Rendering ===

  function render() {
    renderClock();
    renderNow();
    renderTimeline();
    renderDrills();
    renderChoices();
    renderTraffic();
  }

  function renderClock() {
    const st = state.status;
    fill($("clock-now"), fmt(st.now));
    fill($("clock-real"), fmt(st.real_now));
    fill($("clock-tz"), show(st.timezone));
    const drill = st.drill_clock;
    fill($("clock-drill"), drill ? bi("動作中 " + fmt(drill.start_at) + " から", "running") : bi("なし（実時間）", "off: real time"));
    fill($("clock-speed"), drill ? show(drill.speed) + "\u00d7" : DASH);
    fill($("clock-anchor"), drill && drill.anchor ? fmt(drill.anchor) : DASH);
    const mode = st.mode;
    fill($("clock-mode"), mode === "report" ? bi("report", "pass through, count would-maintain")
      : mode === "enforce" ? bi("enforce", "answer with maintenance") : show(mode));
    fill($("config-version"), show(field(st, "config.version")));
    const digest = field(st, "config.sha256");
    const d = $("config-digest");
    fill(d, digest ? String(digest).slice(0, 16) + "\u2026" : DASH);
    if (digest) d.title = digest; else d.removeAttribute("title");
    fill($("config-loaded"), fmt(field(st, "config.loaded_at")));
  }

  function renderNow() {
    const now = nowMs();
    const services = (field(state.timeline, "services") || []).filter((x) => !x.family);
    const up = services.filter((x) => !x.maintenance);
    // One entry per window (or drill) responsible, with the services it takes down.
    const groups = new Map();
    for (const x of services.filter((x) => x.maintenance)) {
      const m = x.maintenance;
      const key = m.source + "\u0000" + m.window + "\u0000" + m.until;
      if (!groups.has(key)) groups.set(key, { m, services: [] });
      groups.get(key).services.push(x);
    }
    fill($("now-down"), [...groups.values()].map(({ m, services }) => {
      const src = SOURCES[m.source] || [m.source, m.source];
      return h("li", { "data-window": m.window, "data-source": m.source }, [
        h("span", { class: "why" }, [
          h("strong", {}, m.title || m.window), ` (${m.window}, ${src[0]} ${src[1]})`,
        ]),
        h("span", { class: "until" }, [
          bi("終了 " + fmt(m.until), "until"), " ",
          h("span", { class: "left" }, bi("残り " + span(Date.parse(m.until) - now), "left")),
        ]),
        h("ul", { class: "chips down" }, services.map((x) => h("li", { "data-service": x.name }, serviceLabel(x)))),
      ]);
    }));
    $("now-none").hidden = groups.size > 0;
    fill($("now-up"), up.map((x) => h("li", { "data-service": x.name }, serviceLabel(x))));
    fill($("next-transition"), fmt(field(state.status, "next_transition")));
  }

  /// Rows of the timeline: one per window id, in the order one-off, recurring, drill.
  function timelineRows(tl) {
    const rows = new Map();
    const add = (source, id, title, extra) => {
      const key = source + "\u0000" + id;
      if (!rows.has(key)) rows.set(key, { source, id, title, extra, occurrences: [] });
      return rows.get(key);
    };
    for (const r of tl.recurring || []) add("recurring", r.id, r.title, r.cron + " · " + r.duration);
    for (const w of tl.windows || []) add(w.source, w.id, w.title).occurrences.push(w);
    const order = { config: 0, recurring: 1, drill: 2 };
    return [...rows.values()].sort((a, b) => (order[a.source] ?? 3) - (order[b.source] ?? 3));
  }

  function renderTimeline() {
    const tl = state.timeline;
    const chart = $("tl-chart");
    if (!tl) return;
    const from = Date.parse(tl.from), to = Date.parse(tl.to), now = Date.parse(tl.now);
    const tz = tl.timezone || "UTC";
    fill($("tl-range"), fmtShort(tl.from) + " \u2192 " + fmtShort(tl.to) + (tl.truncated ? " (一部省略 truncated)" : ""));
    const width = Math.max(280, Math.floor(chart.clientWidth || 800));
    const x0 = 8, x1 = width - 8;
    const x = (ms) => x0 + ((Math.min(Math.max(ms, from), to) - from) / (to - from)) * (x1 - x0);
    const rows = timelineRows(tl);
    const top = 22, rowH = 38;
    const height = top + Math.max(rows.length, 1) * rowH + 18;
    const root = s("svg", {
      id: "tl-svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": "メンテナンス枠のタイムライン / maintenance windows timeline",
      "data-from": from, "data-to": to, "data-x0": x0, "data-x1": x1,
    });
    // Day lines at the zone's midnights; labels thinned out on narrow screens.
    const dayWidth = ((x1 - x0) * 86400000) / (to - from);
    const wd = ["日", "月", "火", "水", "木", "金", "土"];
    for (let day = midnight(from, tz); day < to + 86400000; day = midnight(day + 36 * 3600000, tz)) {
      if (day < from) continue;
      const dx = x(day);
      root.append(s("line", { class: "day-line", x1: dx, x2: dx, y1: 16, y2: height }));
      const p = parts(day + 3600000, tz);
      const weekday = wd[["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"].indexOf(p.weekday)];
      const label = dayWidth >= 64 ? `${+p.month}/${+p.day}(${weekday})` : `${+p.month}/${+p.day}`;
      if (dx + 30 <= x1) root.append(s("text", { class: "day-label", x: dx + 3, y: 12 }, label));
    }
    if (rows.length === 0) {
      root.append(s("text", { x: x0, y: top + 16 }, "この期間の枠はありません / no window in this range"));
    }
    rows.forEach((row, i) => {
      const y = top + i * rowH;
      const g = s("g", { class: "row", "data-row": row.id, "data-source": row.source });
      const src = SOURCES[row.source] || [row.source, row.source];
      const label = s("text", { class: "row-label", x: x0, y: y + 11 }, [
        row.id + (row.title && row.title !== row.id ? " \u2014 " + row.title : ""),
        s("tspan", { class: "sub" }, "  [" + src[0] + " " + src[1] + (row.extra ? " · " + row.extra : "") + "]"),
      ]);
      g.append(s("rect", { class: "band", x: x0, y: y + 16, width: x1 - x0, height: 16 }), label);
      for (const w of row.occurrences) {
        const start = Date.parse(w.start), end = Date.parse(w.end);
        const left = x(start), right = x(end);
        const cls = ["occ", "src-" + w.source, end <= now ? "past" : "", start <= now && now < end ? "active" : ""];
        const rect = s("rect", {
          class: cls.join(" ").trim(), x: left.toFixed(2), y: y + 17,
          width: Math.max(2, right - left).toFixed(2), height: 14, tabindex: 0,
          "data-id": w.id, "data-source": w.source, "data-start": w.start, "data-end": w.end,
        }, s("title", {}, `${w.id}: ${fmt(w.start)} \u2192 ${fmt(w.end)}`));
        for (const type of ["pointerenter", "focus", "click"]) {
          rect.addEventListener(type, () => showDetail(w));
        }
        g.append(rect);
      }
      root.append(g);
    });
    const nx = x(now);
    root.append(
      s("line", { id: "tl-now", class: "now-line", x1: nx, x2: nx, y1: 16, y2: height - 14 }),
      s("text", { class: "now-label", x: Math.min(nx + 3, x1 - 60), y: height - 3 }, "現在 now " + fmtShort(tl.now)),
    );
    chart.replaceChildren(root);
    if (state.selected) {
      const again = (tl.windows || []).find((w) => w.id === state.selected.id && w.start === state.selected.start);
      if (again) showDetail(again); else $("tl-detail").hidden = true;
    }
  }

  function showDetail(w) {
    state.selected = w;
    const src = SOURCES[w.source] || [w.source, w.source];
    const box = $("tl-detail");
    const row = (ja, en, value) => [h("dt", {}, bi(ja, en)), h("dd", {}, value)];
    fill(box, h("dl", { "data-id": w.id }, [
      ...row("ID", "id", h("code", {}, w.id)),
      ...row("タイトル", "title", show(w.title)),
      ...row("種類", "kind", src[0] + " / " + src[1] + (w.active ? " · 進行中 active" : "")),
      ...row("開始", "start", fmt(w.start) + " (" + zone() + ")"),
      ...row("終了", "end", fmt(w.end) + " (" + zone() + ")"),
      ...row("サービス", "services", (w.services || []).join(", ")),
    ]));
    box.hidden = false;
  }

  /// Maintenance answers (and would-maintain ones) over the last 30 minutes, on the routes
  /// whose service one of `services` covers.
  function answered(services) {
    let n = 0;
    for (const r of field(state.traffic, "routes") || []) {
      if (!r.route || !services.some((c) => covers(c, r.service))) continue;
      for (const k of ["maintenance", "report"]) {
        n += (field(r, "per_minute." + k) || []).reduce((a, b) => a + b, 0);
      }
    }
    return n;
  }

  function renderDrills() {
    const now = nowMs();
    const drills = field(state.status, "drills") || [];
    fill($("drill-rows"), drills.map((d) => {
      const hits = answered(d.services || []);
      const close = h("button", { type: "button", class: "danger close-drill", "data-id": d.id }, bi("終了", "Close"));
      close.addEventListener("click", () => closeDrill(d.id));
      return h("tr", { "data-id": d.id }, [
        h("td", {}, [h("code", {}, d.id), h("span", { class: "sub" }, show(d.title))]),
        h("td", {}, (d.services || []).map((x) => h("code", { class: "sub" }, x))),
        h("td", {}, [fmtShort(d.end), h("span", { class: "sub left" }, bi("残り " + span(Date.parse(d.end) - now), "left"))]),
        h("td", { class: hits ? "num" : "num warn" }, hits ? String(hits) : ["0", h("span", { class: "sub" }, bi("未到達", "no request"))]),
        h("td", {}, close),
      ]);
    }));
    $("drill-none").hidden = drills.length > 0;
    $("drill-table").hidden = drills.length === 0;
  }

  function renderChoices() {
    const services = field(state.timeline, "services") || [];
    const offered = services.filter((x) => x.configured);
    const key = offered.map((x) => x.name).join(",");
    if (key === state.choices) return;
    state.choices = key;
    const box = $("service-choices");
    const checked = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
    fill(box, offered.map((x, i) => h("label", { class: x.family ? "family" : "" }, [
      h("input", { type: "checkbox", name: "services", value: x.name, id: "svc-" + i, checked: checked.has(x.name) }),
      " ", x.ja ? x.ja + " " : "", h("code", {}, x.name),
    ])));
  }

  function spark(perMinute) {
    const minutes = field(state.traffic, "minutes") || 30;
    const totals = [], hits = [];
    for (let i = 0; i < minutes; i++) {
      let all = 0;
      for (const v of Object.values(perMinute || {})) all += v[i] || 0;
      totals.push(all);
      hits.push(((perMinute.maintenance || [])[i] || 0) + ((perMinute.report || [])[i] || 0));
    }
    const max = Math.max(1, ...totals);
    const bw = 3, H = 22;
    const svg = s("svg", { class: "spark", width: minutes * bw, height: H, viewBox: `0 0 ${minutes * bw} ${H}`, role: "img",
      "aria-label": "直近30分の1分ごとの件数 / requests per minute, last 30 min" });
    totals.forEach((t, i) => {
      if (!t) return;
      const th = Math.max(1, (t / max) * H), hh = hits[i] ? Math.max(1, (hits[i] / max) * H) : 0;
      svg.append(s("rect", { class: "other", x: i * bw, y: H - th, width: bw - 1, height: th - hh }));
      if (hh) svg.append(s("rect", { class: "hit", x: i * bw, y: H - hh, width: bw - 1, height: hh }));
    });
    svg.append(s("title", {}, totals.join(" ")));
    return svg;
  }

  function renderTraffic() {
    const routes = field(state.traffic, "routes") || [];
    fill($("traffic-rows"), routes.map((r) => {
      const t = r.total || {};
      const recent = ["maintenance", "report"].reduce((a, k) => a + (field(r, "per_minute." + k) || []).reduce((x, y) => x + y, 0), 0);
      // In maintenance now, yet no merchant request got the maintenance answer lately.
      const idle = r.maintenance_now && recent === 0;
      const num = (v) => h("td", { class: "num" }, show(v));
      return h("tr", { "data-route": r.route === null ? "" : r.route, class: idle ? "idle" : "" }, [
        h("td", {}, r.route === null ? bi("(ルートなし)", "no route") : h("code", {}, r.route)),
        h("td", {}, r.route === null ? DASH : [h("code", {}, r.service),
          r.maintenance_now ? h("span", { class: idle ? "sub warn" : "sub" }, idle ? bi("メンテ中・未到達", "in maintenance, no request") : bi("メンテ中", "in maintenance")) : null]),
        num((t.pass || 0) + (t.bypass || 0)),
        num(t.maintenance),
        num(t.report),
        num(t.not_found),
        num(t.upstream_error),
        h("td", {}, spark(r.per_minute || {})),
      ]);
    }));
  }

  // === Report ===

  function label(table, key) {
    return Object.hasOwn(table, key) ? table[key] : [key, key];
  }

  function decisionClass(decision) {
    return "dec-" + (Object.hasOwn(DECISIONS, decision) ? decision : "other");
  }

  /// Known decisions in stacking order, then any other alphabetically.
  function byDecision(a, b) {
    const order = Object.keys(DECISIONS);
    const rank = (d) => (order.includes(d) ? order.indexOf(d) : order.length);
    return rank(a) - rank(b) || a.localeCompare(b);
  }

  function decisionLabel(decision) {
    const [ja, en] = label(DECISIONS, decision);
    return [h("span", { class: "swatch " + decisionClass(decision) }), ...bi(ja, en)];
  }

  /// A time that does not break across lines.
  function when(iso) {
    return h("span", { class: "nowrap" }, fmt(iso));
  }

  function badge(ok) {
    return h("span", { class: "badge " + (ok ? "pass" : "fail") }, ok ? bi("合格", "PASS") : bi("不合格", "FAIL"));
  }

  /// The first LIST_LIMIT items as rows of `tbody` (the table hidden and `none` shown when
  /// there are none), then a row that counts the rest.
  function tableRows(tbody, none, items, row, columns) {
    const shown = items.slice(0, LIST_LIMIT);
    const rest = items.length - shown.length;
    fill($(tbody), [
      shown.map(row),
      rest > 0 ? h("tr", { class: "more" }, h("td", { colspan: columns }, bi(`他 ${rest} 件`, `${rest} more`))) : null,
    ]);
    $(tbody).closest("table").hidden = items.length === 0;
    $(none).hidden = items.length > 0;
  }

  function renderReport() {
    const rp = state.report;
    const none = $("rp-none");
    $("rp-body").hidden = !rp;
    none.hidden = !!rp;
    if (!rp) {
      none.className = state.reportError ? "result error" : "muted";
      fill(none, state.reportError
        ? bi("レポートを読めません", "cannot read the report: " + state.reportError)
        : bi("まだありません", "no window or drill yet"));
      return;
    }
    const subject = rp.subject || {};
    const spanRead = rp.span || {};
    const verdicts = rp.verdicts || [];
    const [kindJa, kindEn] = label(SUBJECTS, subject.kind);
    fill($("rp-subject"), [
      badge(verdicts.every((v) => v.ok)), " ", kindJa + " ", h("span", { class: "en" }, kindEn), " ",
      subject.id ? h("code", {}, subject.id) : null,
      subject.title && subject.title !== subject.id ? " \u2014 " + subject.title : "",
    ]);
    fill($("rp-window"), [
      when(subject.start), " \u2192 ", when(subject.end), " (" + zone() + ")",
      (subject.services || []).length ? h("span", { class: "sub" }, (subject.services || []).join(", ")) : null,
    ]);
    const open = Date.parse(spanRead.horizon) < Date.parse(spanRead.to);
    fill($("rp-span"), [
      when(spanRead.from), " \u2192 ", when(spanRead.to),
      open ? h("span", { class: "sub warn" }, bi("記録中：" + fmt(spanRead.horizon) + " まで", "still recording; read up to now")) : null,
    ]);
    fill($("rp-complete"), rp.complete ? bi("完全", "complete") : h("span", { class: "warn" }, bi("不完全", "incomplete")));
    fill($("rp-incomplete"), (rp.incomplete || []).map((why) => h("li", {}, why)));
    const requests = rp.requests || {};
    fill($("rp-requests"), bi(`${show(requests.total)} 件（枠内 ${show(requests.in_window)}）`, "total (in the window)"));
    const orders = rp.orders || {};
    fill($("rp-orders"), bi(
      `${show(orders.distinct)} 件（再試行 ${show(orders.retried)}、最多 ${show(orders.max_attempts)} 回）`,
      "distinct (retried, most attempts of one)"));

    fill($("rp-verdicts"), verdicts.map((v) => {
      const [ja, en] = label(VERDICTS, v.name);
      const offenders = v.offenders || [];
      const more = offenders.length - LIST_LIMIT;
      return h("li", { class: v.ok ? "ok" : "fail", "data-verdict": v.name }, [
        badge(v.ok), " ", h("strong", {}, bi(ja, en)),
        h("span", { class: "detail-text" }, show(v.detail)),
        offenders.length ? h("ul", { class: "offenders" }, [
          offenders.slice(0, LIST_LIMIT).map((o) => h("li", {}, h("code", {}, o))),
          more > 0 ? h("li", { class: "muted" }, bi(`他 ${more} 件`, `${more} more`)) : null,
        ]) : null,
      ]);
    }));

    renderReportChart();

    const decisions = Object.entries(requests.by_decision || {}).sort(([a], [b]) => byDecision(a, b));
    tableRows("rp-decision-rows", "rp-decisions-none", decisions, ([d, n]) =>
      h("tr", { "data-decision": d }, [h("td", {}, decisionLabel(d)), h("td", { class: "num" }, show(n))]), 2);
    tableRows("rp-recovery-rows", "rp-recovery-none", rp.recovery || [], (r) => {
      const after = typeof r.after_end_seconds === "number" ? r.after_end_seconds : null;
      return h("tr", { "data-service": r.service }, [
        h("td", {}, h("code", {}, r.service)),
        h("td", {}, r.first_success ? when(r.first_success) : h("span", { class: "warn" }, bi("未復旧", "none yet"))),
        h("td", { class: "num", title: after === null ? null : after + " s" }, after === null ? DASH : span(after * 1000)),
      ]);
    }, 3);
    const order = (o) => h("tr", { "data-order": o.order_no }, [
      h("td", {}, h("code", {}, o.order_no)),
      h("td", {}, o.trader_code ? h("code", {}, o.trader_code) : DASH),
      h("td", { class: "num" }, show(o.attempts)),
      h("td", {}, o.first_success ? when(o.first_success) : DASH),
    ]);
    tableRows("rp-stranded-rows", "rp-stranded-none", orders.stranded || [], order, 4);
    tableRows("rp-recovered-rows", "rp-recovered-none", orders.recovered || [], order, 4);
    tableRows("rp-leak-rows", "rp-leaks-none", rp.leaks || [], (l) =>
      h("tr", { "data-request-id": l.request_id }, [
        h("td", {}, when(l.at)),
        h("td", {}, [h("code", {}, l.request_id), l.order_no ? h("span", { class: "sub" }, bi("注文 " + l.order_no, "order")) : null]),
        h("td", {}, decisionLabel(l.decision)),
        h("td", {}, show(l.reason)),
      ]), 4);
  }

  /// Tick spacing for a span: the first of these (minutes) that leaves ~80 px between ticks.
  const TICKS = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];

  /// Requests per bucket, stacked by decision, over the span read; the window shaded.
  function renderReportChart() {
    const rp = state.report;
    const chart = $("rp-chart");
    if (!rp) return;
    const tz = zone();
    const from = Date.parse(rp.span.from), to = Date.parse(rp.span.to), horizon = Date.parse(rp.span.horizon);
    const start = Date.parse(rp.subject.start), end = Date.parse(rp.subject.end);
    const step = (field(rp, "timeline.bucket_seconds") || 60) * 1000;
    const buckets = field(rp, "timeline.buckets") || [];
    const totals = buckets.map((b) => Object.values(b.by_decision || {}).reduce((a, n) => a + n, 0));
    const max = Math.max(1, ...totals);
    const perMinutes = Math.round(step / 60000), peak = Math.max(0, ...totals);
    fill($("rp-scale"), bi(`${perMinutes}分ごと・最大 ${peak} 件`, `per ${perMinutes} min, at most ${peak}`));

    const width = Math.max(280, Math.floor(chart.clientWidth || 800));
    const x0 = 8, x1 = width - 8;
    const x = (ms) => x0 + ((Math.min(Math.max(ms, from), to) - from) / Math.max(1, to - from)) * (x1 - x0);
    const top = 22, barsH = 120, height = top + barsH + 20;
    const base = top + barsH;
    const root = s("svg", {
      id: "rp-svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": "判定別リクエスト数の推移 / requests over time by decision",
      "data-from": from, "data-to": to, "data-x0": x0, "data-x1": x1,
    });
    const source = rp.subject.kind === "drill" ? "src-drill" : "src-config";
    if (rp.subject.kind !== "range") {
      const [ja, en] = label(SUBJECTS, rp.subject.kind);
      root.append(
        s("rect", { class: "window-shade " + source, x: x(start), y: 16, width: Math.max(1, x(end) - x(start)), height: base - 16 }),
        s("text", { class: "window-label " + source, x: x(start) + 3, y: 12 }, `${ja} ${en} ${rp.subject.id || ""}`),
      );
    }
    // Ticks at round local times; the zone's midnights are labelled with the date.
    const minutes = TICKS.find((m) => ((x1 - x0) * m * 60000) / Math.max(1, to - from) >= 80) || 1440;
    for (let tick = midnight(from, tz); tick <= to; tick += minutes * 60000) {
      if (tick < from) continue;
      const tx = x(tick);
      const p = parts(tick, tz);
      const text = p.hour === "00" && p.minute === "00" ? `${+p.month}/${+p.day}` : `${p.hour}:${p.minute}`;
      root.append(s("line", { class: "day-line", x1: tx, x2: tx, y1: 16, y2: base + 4 }));
      if (tx + 30 <= x1) root.append(s("text", { class: "day-label", x: tx + 2, y: height - 4 }, text));
    }
    buckets.forEach((b, i) => {
      if (!totals[i]) return;
      const at = Date.parse(b.start);
      const bx = x(at), bw = Math.max(1, x(at + step) - bx - (x(at + step) - bx > 3 ? 1 : 0));
      const counts = Object.entries(b.by_decision || {}).sort(([d1], [d2]) => byDecision(d1, d2));
      const g = s("g", { class: "bucket", "data-start": b.start }, s("title", {},
        fmt(b.start) + "\n" + counts.map(([d, n]) => `${label(DECISIONS, d)[0]} ${d}: ${n}`).join("\n")));
      let y = base;
      for (const [decision, n] of counts) {
        const bh = Math.max(1, (n / max) * barsH);
        y -= bh;
        g.append(s("rect", {
          class: "bar " + decisionClass(decision), "data-decision": decision, "data-count": n,
          x: bx.toFixed(2), y: y.toFixed(2), width: bw.toFixed(2), height: bh.toFixed(2),
        }));
      }
      root.append(g);
    });
    if (totals.every((n) => !n)) {
      root.append(s("text", { x: x0 + 4, y: top + barsH / 2 }, "この範囲のリクエストはありません / no request in this span"));
    }
    root.append(s("line", { class: "axis", x1: x0, x2: x1, y1: base, y2: base }));
    if (rp.subject.kind !== "range") {
      for (const edge of [start, end]) {
        root.append(s("line", { class: "window-edge " + source, x1: x(edge), x2: x(edge), y1: 16, y2: base }));
      }
    }
    if (horizon < to) {
      const nx = x(horizon);
      root.append(
        s("line", { class: "now-line", x1: nx, x2: nx, y1: 16, y2: base }),
        s("text", { class: "now-label", x: Math.min(nx + 3, x1 - 60), y: top + 10 }, "現在 now"),
      );
    }
    chart.replaceChildren(root);

    const seen = Object.keys(field(rp, "requests.by_decision") || {}).sort(byDecision);
    fill($("rp-legend"), [
      seen.map((d) => h("li", {}, decisionLabel(d))),
      rp.subject.kind !== "range" ? h("li", {}, [h("span", { class: "swatch shade " + source }), ...bi("枠の期間", "window")]) : null,
      horizon < to ? h("li", {}, [h("span", { class: "swatch now" }), ...bi("現在", "now")]) : null,
    ]);
  }

  // === Actions ===

  async function closeDrill(id) {
    try {
      const res = await call("DELETE", "/drills/" + encodeURIComponent(id));
      if (res.status === 204) result("drill-result", true, bi(`ドリル ${id} を終了しました`, "closed"));
      else result("drill-result", false, failure(res));
    } catch (e) {
      result("drill-result", false, bi("送信できません", e.message));
    }
    refresh();
  }

  $("open-drill").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const services = [...form.querySelectorAll("input[name=services]:checked")].map((i) => i.value);
    if (services.length === 0) {
      result("drill-result", false, bi("サービスを選んでください", "choose at least one service"));
      return;
    }
    const body = { services, duration: form.elements.duration.value.trim() };
    const title = form.elements.title.value.trim();
    if (title) body.title = title;
    try {
      const res = await call("POST", "/drills", body);
      if (res.status === 201) {
        result("drill-result", true, bi(`ドリル ${res.data.id} を開始しました`, "opened"));
        form.elements.title.value = "";
      } else {
        result("drill-result", false, failure(res));
      }
    } catch (e) {
      result("drill-result", false, bi("送信できません", e.message));
    }
    refresh();
  });

  $("reload").addEventListener("click", async () => {
    fill($("reload-errors"), []);
    try {
      const res = await call("POST", "/reload");
      if (res.ok) {
        result("reload-result", true, bi(`再読み込みしました（バージョン ${field(res.data, "version")}）`, "reloaded"));
      } else if (res.status === 422) {
        result("reload-result", false, bi("設定にエラーがあります。以前の設定で動作中です", "the config has errors; the previous one keeps running"));
        fill($("reload-errors"), (field(res.data, "errors") || []).map((line) => h("li", {}, h("code", {}, line))));
      } else {
        result("reload-result", false, failure(res));
      }
    } catch (e) {
      result("reload-result", false, bi("送信できません", e.message));
    }
    refresh();
  });

  function renderToken() {
    fill($("token-state"), token()
      ? bi("トークンはこのタブに保存されています", "kept for this tab (sessionStorage)")
      : bi("トークン未設定（設定されている場合は必要）", "none: needed when the shim has one"));
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("token");
    try {
      if (input.value.trim()) sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: nothing kept */ }
    input.value = "";
    renderToken();
  });

  $("token-forget").addEventListener("click", () => {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing kept */ }
    renderToken();
  });

  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      renderTimeline();
      renderReportChart();
    }, 100);
  });

  renderToken();
  refresh();
})();
