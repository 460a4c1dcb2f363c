// gridsight monitoring-center UI: review queue, case detail with clip + overlays, cameras.
// Plain JavaScript, no build step. The API token stays in sessionStorage and in request
// headers only (clips are fetched with the header and played from a blob URL), so it never
// appears in URLs, logs or browser history.
"use strict";

const I18N = {
  zh: {
    title: "gridsight 社区网格事件", nav_queue: "审核队列", nav_cases: "案件", nav_cameras: "摄像机",
    live_on: "实时", live_off: "离线", logout: "退出", login_title: "登录", token: "访问令牌",
    token_hint: "由管理员用 gridsight token create 生成", login: "登录", bad_token: "令牌无效或已撤销",
    user_name: "用户名", password: "密码", or_token: "或使用访问令牌", bad_login: "用户名或密码错误",
    forbidden: "当前角色无权执行此操作",
    queue_title: "待审核事件", cases_title: "全部案件", all: "全部", type: "类型", camera: "摄像机",
    state: "状态", created: "发现时间", sla: "时限", badges: "标记", none: "暂无", open_only: "仅未结案",
    overdue: "已超时", left: "剩余", escalated: "已升级", supervised: "督办", hotspot: "高发点位",
    keys: "快捷键：↑/↓ 选择，Enter 打开，A 确认上报，R 驳回，N 下一条",
    accept: "确认上报", reject: "驳回", dispatch: "派遣", respond: "响应", dispose: "处置完毕",
    close: "核查结案", suspend: "挂起", resume: "恢复", return: "退回", export: "导出证据包（脱敏）",
    reject_reason: "驳回原因", reason: "原因", unit: "责任单位", overlay: "叠加标注",
    history: "处置过程", details: "事件信息", evidence: "证据", zone: "区域", dwell: "持续",
    origin: "来源楼层/窗户", summary: "摘要", level: "升级级别", assignee: "责任单位",
    exported: "已导出", cameras_title: "摄像机状态", fps: "帧率", drops: "丢帧", reconnects: "重连", decoder: "解码",
    as_cards: "卡片视图", as_table: "列表视图", urgent_case: "紧急案件", live_video: "实时画面", live_unsupported: "浏览器不支持该视频格式", picture: "画面", view: "画面", view_ok: "正常", view_learning: "学习中", view_moved: "移位", view_occluded: "遮挡",
    view_defocused: "失焦", view_paused: "规则已暂停：请核对区域后确认当前画面", confirm_view: "确认当前画面",
    sway: "画面晃动", sway_hint: "已自动校正，但细小抛物可能漏检：建议加固安装",
    back: "返回队列", after: "核查后画面", deadline_review: "审核", deadline_respond: "响应",
    deadline_dispose: "处置", deadline_recheck: "核查",
    false_positive: "误报", duplicate: "重复", out_of_scope: "不属管辖", insufficient_evidence: "证据不足",
    other: "其他",
    st_pending_review: "待审核", st_reported: "已上报", st_dispatched: "已派遣", st_responded: "已响应",
    st_disposed: "已处置", st_verifying: "核查中", st_closed: "已结案", st_rejected: "已驳回",
    st_returned: "已退回", st_suspended: "已挂起", st_verify_failed: "核查未通过",
    ev_started: "进行中", ev_updated: "进行中", ev_ended: "已结束",
    cr_worker_lost: "分析节点失联，由系统结束", cr_restarted: "程序重启前未结束，由系统结束",
    nav_scene: "实景", nav_dash: "统计", scene_title: "实景视图", grids_title: "网格概况",
    grid: "网格", open_cases: "未结案件", urgent_n: "紧急", dash_title: "统计概览",
    per_day: "每日事件", by_state: "案件状态", sla_title: "时限达标率", precision_title: "审核准确率",
    precision: "准确率", accepted: "确认", rejected: "驳回", suggestion: "建议", no_frame: "暂无画面",
    nav_zones: "区域编辑", zones_title: "区域与立面标定", new_zone: "新建区域", finish: "完成", delete_zone: "删除区域",
    draw_rim: "画桶口线", validate: "校验", save_apply: "保存并应用", valid: "校验通过", saved: "已保存",
    applied: "已应用（仅重启本摄像机）", not_applied: "已写入配置；重启 gridsight run 后生效", kind: "类型", name: "名称",
    facades: "立面标定", new_facade: "新建立面", building: "楼栋", floors: "楼层", columns: "窗列（逗号分隔）",
    floor_h: "层高(米)", col_w: "窗列宽(米)", hfov: "镜头水平视场角(°)", hfov_unknown: "未知",
    hfov_hint: "相机规格书上的水平视场角；填写后按此镜头求解相机位置（近乎平视的立面仅凭四角无法确定距离）", activity: "显示运动热区（树木、旗帜：勿划入立面区域）", camera_fit: "相机拟合",
    no_activity: "尚无运动热区（仅高空抛物摄像机在运行数分钟后生成）",
    editor_hint: "点击添加顶点，点击首点或按“完成”闭合；拖动顶点修改；Shift+点击顶点删除。立面：拖动四个角点（左上、右上、右下、左下）。",
    read_only: "此服务未加载 cameras.toml，只读", unsaved: "有未保存的修改",
    nav_search: "事件检索", search_title: "事件检索与回放", from: "起", to: "止", search: "检索", before_after: "前后对比",
    before: "事件画面", health_history: "状态记录", uptime: "在线率",
  },
  en: {
    title: "gridsight community events", nav_queue: "Review queue", nav_cases: "Cases",
    nav_cameras: "Cameras", live_on: "live", live_off: "offline", logout: "Log out",
    login_title: "Sign in", token: "Access token", token_hint: "Issued by an admin: gridsight token create",
    user_name: "User name", password: "Password", or_token: "Or use an access token", bad_login: "Wrong name or password",
    login: "Sign in", bad_token: "Unknown or revoked token", forbidden: "Your role may not do this",
    queue_title: "Events awaiting review", cases_title: "All cases", all: "All", type: "Type",
    camera: "Camera", state: "State", created: "Detected", sla: "Deadline", badges: "Flags",
    none: "Nothing here", open_only: "Open only", overdue: "overdue", left: "left",
    escalated: "escalated", supervised: "supervised", hotspot: "hotspot",
    keys: "Keys: ↑/↓ select, Enter open, A accept, R reject, N next",
    accept: "Accept", reject: "Reject", dispatch: "Dispatch", respond: "Respond", dispose: "Disposed",
    close: "Close", suspend: "Suspend", resume: "Resume", return: "Return",
    export: "Export package (masked)", reject_reason: "Reject reason", reason: "Reason", unit: "Unit",
    overlay: "Overlay", history: "History", details: "Event", evidence: "Evidence", zone: "Zone",
    dwell: "Duration", origin: "Origin floor/window", summary: "Summary", level: "Escalation level",
    assignee: "Assignee", exported: "Exported", cameras_title: "Camera health", fps: "fps",
    as_cards: "Cards", as_table: "Table", urgent_case: "Urgent case", live_video: "Live video", live_unsupported: "This browser cannot play the stream", picture: "Picture", view: "View", view_ok: "ok", view_learning: "learning", view_moved: "moved", view_occluded: "covered",
    view_defocused: "out of focus", view_paused: "Rules paused: check the zones, then confirm the view now",
    sway: "Camera sways", sway_hint: "registered, but small thrown objects may be missed: firm up the mount",
    confirm_view: "Confirm view now",
    drops: "drops", reconnects: "reconnects", decoder: "decoding", back: "Back to queue", after: "After re-check",
    deadline_review: "review", deadline_respond: "respond", deadline_dispose: "dispose",
    deadline_recheck: "re-check",
    false_positive: "False positive", duplicate: "Duplicate", out_of_scope: "Out of scope",
    insufficient_evidence: "Insufficient evidence", other: "Other",
    st_pending_review: "pending review", st_reported: "reported", st_dispatched: "dispatched",
    st_responded: "responded", st_disposed: "disposed", st_verifying: "re-checking",
    st_closed: "closed", st_rejected: "rejected", st_returned: "returned",
    ev_started: "ongoing", ev_updated: "ongoing", ev_ended: "ended",
    cr_worker_lost: "ended by the system: its analysis worker was lost",
    cr_restarted: "ended by the system: still open when the program restarted",
    st_suspended: "suspended", st_verify_failed: "re-check failed",
    nav_scene: "Scene", nav_dash: "Dashboard", scene_title: "Scene view", grids_title: "Grids",
    grid: "Grid", open_cases: "Open cases", urgent_n: "urgent", dash_title: "Dashboard",
    per_day: "Events per day", by_state: "Cases by state", sla_title: "SLA compliance",
    precision_title: "Reviewer precision", precision: "precision", accepted: "accepted",
    rejected: "rejected", suggestion: "suggestion", no_frame: "no frame yet",
    nav_zones: "Zones", zones_title: "Zones and façade calibration", new_zone: "New zone", finish: "Finish",
    delete_zone: "Delete zone", draw_rim: "Draw rim", validate: "Validate", save_apply: "Save & apply",
    valid: "Valid", saved: "Saved", applied: "Applied (only this camera restarted)",
    not_applied: "Written to cameras.toml; takes effect when gridsight run restarts", kind: "Kind", name: "Name",
    facades: "Façade calibration", new_facade: "New façade", building: "Building", floors: "Floors",
    columns: "Window columns (comma separated)", floor_h: "Floor height (m)", col_w: "Column width (m)", hfov: "Lens horizontal FOV (°)", hfov_unknown: "unknown",
    hfov_hint: "The horizontal field of view from the camera's data sheet; the camera is then placed with this lens (a façade seen nearly level does not tell its distance by its corners alone)",
    activity: "Show the activity map (trees, flags: keep them out of façade zones)", camera_fit: "Camera fit",
    no_activity: "No activity map yet (高空抛物 cameras learn one over their first minutes)",
    editor_hint: "Click to add points, click the first point or Finish to close; drag points to move; Shift+click a point to delete it. Façade: drag its four corners (top-left, top-right, bottom-right, bottom-left).",
    read_only: "This server has no cameras.toml loaded: read only", unsaved: "Unsaved changes",
    nav_search: "Search", search_title: "Event search and replay", from: "From", to: "To", search: "Search",
    before_after: "Before / after", before: "At detection", health_history: "Status history", uptime: "uptime",
  },
};
const TYPES = {
  high_altitude_throwing: ["高空抛物", "High-altitude throwing"],
  road_occupation_vending: ["占道经营", "Road-occupying vending"],
  unlicensed_mobile_vending: ["无照经营游商", "Unlicensed mobile vendor"],
  shop_front_spillover: ["店外经营", "Shop-front spill-over"],
  bin_overflow: ["垃圾满溢", "Overflowing bin"],
  exposed_garbage: ["暴露垃圾", "Exposed garbage"],
  accumulated_garbage: ["积存垃圾渣土", "Accumulated garbage"],
  illegal_parking_motor: ["机动车乱停放", "Illegal parking"],
  illegal_parking_non_motor: ["非机动车乱停放", "Illegal non-motor parking"],
  fire_lane_occupation: ["占用消防通道", "Fire-lane occupation"],
};
// Buttons offered per state (the server still decides; a refused action shows its message).
const ACTIONS = {
  pending_review: ["accept", "reject"], reported: ["dispatch", "suspend"],
  dispatched: ["respond", "dispose", "return", "suspend"], responded: ["dispose", "return", "suspend"],
  returned: ["dispatch", "suspend"], verify_failed: ["dispatch", "suspend"],
  disposed: ["close", "suspend"], verifying: ["close", "suspend"], suspended: ["resume"],
};
const NEEDS_REASON = new Set(["return", "suspend", "close"]);

const state = {
  lang: localStorage.getItem("gs_lang") || "zh",
  token: sessionStorage.getItem("gs_token") || "",
  rows: [], selected: 0, filters: { type: "", camera: "", open: true }, blobs: [],
  thumbs: new Map(),  // event id → Promise of a blob URL
  seenUrgent: null,  // urgent pending case ids already announced (null: not yet looked)
  user: null, csrf: null,  // a person signed in with name and password (session cookie)
  cards: Boolean(localStorage.getItem("gs_cards")),  // the queue as cards with pictures
  lives: [],  // AbortControllers of the live videos on screen
};

const t = (k) => (I18N[state.lang][k] ?? k);
// an event the store ended for its analyzer (lost worker, crash) says so, in the user's language
const eventState = (ev) => t("ev_" + ev.state) + (ev.closed_reason ? " · " + t("cr_" + ev.closed_reason) : "");
const typeName = (et) => (TYPES[et] ? TYPES[et][state.lang === "zh" ? 0 : 1] : et);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const $ = (sel, root = document) => root.querySelector(sel);

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
}
const fmtEpoch = (s) => fmtTime(new Date(s * 1000).toISOString());

function nextDeadline(c) {
  const d = c.deadlines || {};
  const order = { pending_review: ["review_by"], dispatched: ["respond_by", "dispose_by"],
                  responded: ["dispose_by"], verifying: ["recheck_until"] }[c.state] || [];
  const live = order.map((k) => [k, d[k]]).filter(([, v]) => v);
  if (!live.length) return null;
  live.sort((a, b) => new Date(a[1]) - new Date(b[1]));
  return { kind: live[0][0].replace(/_(by|until)$/, ""), at: new Date(live[0][1]) };
}

function slaCell(c) {
  const dl = nextDeadline(c);
  if (!dl) return "";
  const s = Math.round((dl.at - Date.now()) / 1000);
  const abs = Math.abs(s);
  const txt = abs >= 3600 ? `${Math.floor(abs / 3600)}h${String(Math.floor((abs % 3600) / 60)).padStart(2, "0")}m`
    : `${Math.floor(abs / 60)}m${String(abs % 60).padStart(2, "0")}s`;
  const cls = s < 0 ? "over" : s < 600 ? "soon" : "";
  const label = t(`deadline_${dl.kind}`);
  return `<span class="sla ${cls}" data-deadline="${dl.at.toISOString()}" data-kind="${dl.kind}">${esc(label)} ${s < 0 ? t("overdue") + " " + txt : txt + " " + t("left")}</span>`;
}

function badges(c) {
  let b = "";
  if (c.severity === "urgent") b += `<span class="badge urgent">${state.lang === "zh" ? "紧急" : "urgent"}</span>`;
  if (c.escalation_level > 0) b += `<span class="badge esc">${t("escalated")} L${c.escalation_level}</span>`;
  if (c.supervised) b += `<span class="badge">${t("supervised")}</span>`;
  if (c.hotspot) b += `<span class="badge hot">${t("hotspot")}</span>`;
  return b;
}

// -- API -------------------------------------------------------------------------------------

// A machine token travels in the Authorization header; a person's session is a cookie the
// browser sends itself, and every unsafe request echoes the session's CSRF token.
function authHeaders(method = "GET") {
  if (state.token) return { Authorization: `Bearer ${state.token}` };
  return state.csrf && method !== "GET" ? { "X-CSRF-Token": state.csrf } : {};
}
const signedIn = () => Boolean(state.token || state.user);

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {}, authHeaders(opts.method || "GET"));
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(opts.json);
  }
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  if (r.status === 401) { showLogin(t("bad_token")); throw new Error("401"); }
  return r;
}

async function apiJson(path, opts) {
  const r = await api(path, opts);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(r.status === 403 ? t("forbidden") : (body.detail || r.statusText));
  return body;
}

async function blobUrl(path) {
  const r = await api(path);
  if (!r.ok) return null;
  const url = URL.createObjectURL(await r.blob());
  state.blobs.push(url);
  return url;
}

// -- live video: the camera's own H.264 as fragmented MP4 into Media Source Extensions --------

// Plays the camera now in ``video`` until the screen changes (fetch with the token header, so
// it never appears in a URL). Keeps to the live edge: a tab in the background catches up.
async function playLive(video, cameraId) {
  const ctrl = new AbortController();
  state.lives.push(ctrl);
  const r = await api(`/cameras/${encodeURIComponent(cameraId)}/live.mp4`, { signal: ctrl.signal });
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).detail || String(r.status));
  const type = `video/mp4; codecs="${r.headers.get("X-Codec")}"`;
  if (!("MediaSource" in window) || !MediaSource.isTypeSupported(type)) throw new Error(`${t("live_unsupported")} (${type})`);
  const ms = new MediaSource();
  video.src = URL.createObjectURL(ms);
  state.blobs.push(video.src);
  await new Promise((res) => ms.addEventListener("sourceopen", res, { once: true }));
  const sb = ms.addSourceBuffer(type);
  const pending = [];
  const pump = () => {
    if (sb.updating || !pending.length || ms.readyState !== "open") return;
    sb.appendBuffer(pending.shift());
  };
  sb.addEventListener("updateend", () => {
    const b = video.buffered;
    if (b.length) {
      const end = b.end(b.length - 1);
      if (video.currentTime < b.start(0) || end - video.currentTime > 3) video.currentTime = Math.max(b.start(0), end - 0.3);
      // keep ~30 s in memory
      if (!sb.updating && video.currentTime - b.start(0) > 40) { sb.remove(b.start(0), video.currentTime - 30); return; }
    }
    pump();
  });
  video.muted = true;
  video.play().catch(() => {});
  const reader = r.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending.push(value);
      pump();
    }
  } catch (e) { /* screen left: the fetch was aborted */ }
}

const LIVE_HTML = () => `<button type="button" class="live-btn">${t("live_video")}</button><video class="live" playsinline muted hidden></video>`;

function wireLive(root, cameraId) {
  const btn = root.querySelector(".live-btn"), video = root.querySelector("video.live");
  btn.addEventListener("click", () => {
    btn.hidden = true; video.hidden = false;
    playLive(video, cameraId).catch((e) => video.insertAdjacentHTML("afterend", `<p class="error">${esc(e.message)}</p>`));
  });
}

function stopLives() {
  state.lives.forEach((c) => c.abort());
  state.lives = [];
}

// -- live updates (SSE over fetch, so the token stays in the header) --------------------------

let liveAbort = null;
async function startLive() {
  if (liveAbort) liveAbort.abort();
  liveAbort = new AbortController();
  const live = $("#live");
  for (;;) {
    try {
      const r = await fetch("/cases/stream", { headers: authHeaders(), signal: liveAbort.signal });
      if (!r.ok) throw new Error(String(r.status));
      live.textContent = t("live_on"); live.classList.add("on"); live.dataset.on = "1";
      await alertUrgent();  // (re)connected: what came in meanwhile is announced too
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "", first = true;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const msg = buf.slice(0, i); buf = buf.slice(i + 2);
          if (msg.startsWith("data:") && !first) onLiveChange();
          if (msg.startsWith("data:")) first = false;
        }
      }
    } catch (e) {
      if (liveAbort.signal.aborted) return;
    }
    live.textContent = t("live_off"); live.classList.remove("on"); live.dataset.on = "";
    await new Promise((res) => setTimeout(res, 2000));
  }
}

// Urgent cases (高空抛物, fire lanes) have a 10-minute review deadline: a new one sounds and,
// where the browser allows, shows a system notification, whatever screen is open.
async function alertUrgent() {
  let data;
  try { data = await apiJson("/cases?state=pending_review&limit=100"); } catch (e) { return; }
  const urgent = data.items.filter((c) => c.severity === "urgent");
  const fresh = state.seenUrgent ? urgent.filter((c) => !state.seenUrgent.has(c.case_id)) : [];
  state.seenUrgent = new Set(urgent.map((c) => c.case_id));
  if (!fresh.length) return;
  document.body.dataset.urgentAlerts = String(Number(document.body.dataset.urgentAlerts || 0) + fresh.length);
  try {
    const ctx = new AudioContext(), osc = ctx.createOscillator(), gain = ctx.createGain();
    osc.frequency.value = 880; gain.gain.value = 0.2;
    osc.connect(gain).connect(ctx.destination); osc.start(); osc.stop(ctx.currentTime + 0.4);
  } catch (e) { /* no audio device */ }
  if ("Notification" in window && Notification.permission === "granted") {
    for (const c of fresh.slice(0, 3)) new Notification(`${t("urgent_case")}: ${typeName(c.event_type)}`, { body: `${c.camera_id}${c.zone_id ? " / " + c.zone_id : ""}`, tag: c.case_id });
  }
}

function onLiveChange() {
  alertUrgent();
  const route = location.hash || "#/queue";
  if (route.startsWith("#/queue") || route.startsWith("#/cases")) renderList(route.startsWith("#/queue"));
}

// -- screens ---------------------------------------------------------------------------------

async function renderList(queue) {
  const f = state.filters;
  const q = new URLSearchParams({ limit: "200" });
  if (queue) q.set("state", "pending_review"); else if (f.open) q.set("open_only", "true");
  if (f.type) q.set("event_type", f.type);
  if (f.camera) q.set("camera_id", f.camera);
  const view = $("#view");
  let data;
  try { data = await apiJson(`/cases?${q}`); } catch (e) { view.innerHTML = `<p class="error">${esc(e.message)}</p>`; return; }
  state.rows = data.items;
  state.selected = Math.min(state.selected, Math.max(0, state.rows.length - 1));
  const typeOpts = Object.keys(TYPES).map((k) => `<option value="${k}" ${f.type === k ? "selected" : ""}>${esc(typeName(k))}</option>`).join("");
  view.innerHTML = `
    <h2>${t(queue ? "queue_title" : "cases_title")} <span class="hint" id="count">(${data.total})</span></h2>
    <div class="filters">
      <label>${t("type")} <select id="f-type"><option value="">${t("all")}</option>${typeOpts}</select></label>
      <label>${t("camera")} <input id="f-camera" value="${esc(f.camera)}" size="12"></label>
      ${queue ? "" : `<label><input type="checkbox" id="f-open" ${f.open ? "checked" : ""}> ${t("open_only")}</label>`}
      <button type="button" id="view-toggle">${t(state.cards ? "as_table" : "as_cards")}</button>
      <span class="keys">${t("keys")}</span>
    </div>
    ${state.cards ? cardsHtml() : `<table id="queue"><thead><tr><th>${t("picture")}</th><th>${t("type")}</th><th>${t("camera")}</th><th>${t("state")}</th>
      <th>${t("created")}</th><th>${t("sla")}</th><th>${t("badges")}</th></tr></thead>
    <tbody>${state.rows.map((c, i) => `
      <tr class="row ${i === state.selected ? "selected" : ""}" data-id="${esc(c.case_id)}" data-i="${i}">
        <td class="thumb">${i < THUMB_ROWS && c.event_ids.length ? `<img alt="" data-ev="${esc(c.event_ids[0])}">` : ""}</td>
        <td>${esc(typeName(c.event_type))}</td><td>${esc(c.camera_id)}${c.zone_id ? " / " + esc(c.zone_id) : ""}</td>
        <td class="state">${esc(t("st_" + c.state))}</td><td>${esc(fmtTime(c.created_at))}</td>
        <td>${slaCell(c)}</td><td>${badges(c)}</td></tr>`).join("") || `<tr><td colspan="7" class="hint">${t("none")}</td></tr>`}
    </tbody></table>`}`;
  $("#view-toggle").onclick = () => { state.cards = !state.cards; localStorage.setItem("gs_cards", state.cards ? "1" : ""); renderList(queue); };
  $("#f-type").onchange = (e) => { f.type = e.target.value; renderList(queue); };
  $("#f-camera").onchange = (e) => { f.camera = e.target.value.trim(); renderList(queue); };
  if (!queue) $("#f-open").onchange = (e) => { f.open = e.target.checked; renderList(queue); };
  view.querySelectorAll("#queue .row").forEach((tr) => {
    tr.onclick = () => { state.selected = Number(tr.dataset.i); location.hash = `#/case/${tr.dataset.id}`; };
  });
  // pictures of the first rows, each fetched once (the queue re-renders on every case change)
  for (const img of view.querySelectorAll("#queue .thumb img")) {
    const ev = img.dataset.ev;
    if (!state.thumbs.has(ev)) state.thumbs.set(ev, blobOnce(`/events/${encodeURIComponent(ev)}/thumb.jpg`));
    state.thumbs.get(ev).then((u) => { if (u) img.src = u; else img.remove(); });
  }
}

// The compact card view: a picture per case with its type, place, deadline and badges, for
// scanning a long queue; the same keys select and act.
function cardsHtml() {
  return `<div id="queue" class="cards">${state.rows.map((c, i) => `
    <div class="row card ${i === state.selected ? "selected" : ""}" data-id="${esc(c.case_id)}" data-i="${i}">
      <div class="thumb">${i < THUMB_ROWS && c.event_ids.length ? `<img alt="" data-ev="${esc(c.event_ids[0])}">` : ""}</div>
      <div><b>${esc(typeName(c.event_type))}</b> ${badges(c)}</div>
      <div class="hint">${esc(c.camera_id)}${c.zone_id ? " / " + esc(c.zone_id) : ""} · ${esc(fmtTime(c.created_at))}</div>
      <div>${slaCell(c)}</div></div>`).join("") || `<p class="hint">${t("none")}</p>`}</div>`;
}

const THUMB_ROWS = 40;
// a blob URL kept for the session (thumbnails are reused across re-renders, never revoked)
async function blobOnce(path) {
  const r = await api(path);
  return r.ok ? URL.createObjectURL(await r.blob()) : null;
}

function select(i) {
  if (!state.rows.length) return;
  state.selected = Math.max(0, Math.min(state.rows.length - 1, i));
  document.querySelectorAll("#queue .row").forEach((tr) => tr.classList.toggle("selected", Number(tr.dataset.i) === state.selected));
  document.querySelector("#queue .selected")?.scrollIntoView({ block: "nearest" });
}

async function act(caseId, action, extra = {}) {
  return apiJson(`/cases/${encodeURIComponent(caseId)}/actions`, { method: "POST", json: Object.assign({ action }, extra) });
}

function askReject() {
  return new Promise((resolve) => {
    const dlg = document.createElement("dialog");
    const opts = ["false_positive", "duplicate", "out_of_scope", "insufficient_evidence", "other"];
    dlg.innerHTML = `<form method="dialog"><h3>${t("reject_reason")}</h3>
      <select id="reject-code">${opts.map((o) => `<option value="${o}">${esc(t(o))}</option>`).join("")}</select>
      <p><button value="ok" class="danger" id="reject-ok">${t("reject")}</button> <button value="cancel">✕</button></p></form>`;
    document.body.appendChild(dlg);
    dlg.addEventListener("close", () => { resolve(dlg.returnValue === "ok" ? $("#reject-code", dlg).value : null); dlg.remove(); });
    dlg.showModal();
  });
}

async function keyAction(action) {
  const c = state.rows[state.selected];
  if (!c) return;
  try {
    if (action === "accept") await act(c.case_id, "accept");
    else {
      const code = await askReject();
      if (!code) return;
      await act(c.case_id, "reject", { reason_code: code });
    }
  } catch (e) { alert(e.message); }
  await renderList(true);
}

function drawOverlay(canvas, report, w, h) {
  canvas.width = w; canvas.height = h;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  const det = report.detection || {};
  g.lineWidth = Math.max(2, w / 400);
  const poly = (pts, color, close = true) => {
    if (!pts || pts.length < 2) return;
    g.strokeStyle = color; g.beginPath();
    pts.forEach(([x, y], i) => (i ? g.lineTo(x * w, y * h) : g.moveTo(x * w, y * h)));
    if (close) g.closePath();
    g.stroke();
  };
  if (det.zone) poly(det.zone.polygon_norm, "#ffb000");
  for (const k of ["footprint", "changed"]) for (const p of (det[k]?.polygons_norm || [])) poly(p, "#dc143c");
  g.strokeStyle = "#ff3030";
  for (const o of det.objects || []) if (o.bbox_norm) {
    const [x1, y1, x2, y2] = o.bbox_norm;
    g.strokeRect(x1 * w, y1 * h, (x2 - x1) * w, (y2 - y1) * h);
  }
  if (det.trajectory) poly(det.trajectory.map((p) => [p.x_norm, p.y_norm]), "#ff3030", false);
  canvas.dataset.drawn = "1";
}

// The event's clip in #clip, with the report's overlay on #overlay (toggled by #show-overlay).
// An H.265 camera's clip comes with an H.264 copy (links.clip_preview) that browsers play.
async function playClip(eventId, report, links) {
  const video = $("#clip"), canvas = $("#overlay");
  $("#show-overlay").onchange = (e) => { canvas.style.display = e.target.checked ? "" : "none"; };
  video.addEventListener("loadedmetadata", () => drawOverlay(canvas, report, video.videoWidth, video.videoHeight));
  const file = links?.clip_preview ? "clip-preview.mp4" : "clip.mp4";
  const url = await blobUrl(`/events/${encodeURIComponent(eventId)}/${file}`);
  if (url) video.src = url;
}

async function renderCase(caseId) {
  state.blobs.forEach((u) => URL.revokeObjectURL(u)); state.blobs = [];
  const view = $("#view");
  let c;
  try { c = await apiJson(`/cases/${encodeURIComponent(caseId)}`); } catch (e) { view.innerHTML = `<p class="error">${esc(e.message)}</p>`; return; }
  const eventId = c.event_ids[c.event_ids.length - 1];
  const ev = await apiJson(`/events/${encodeURIComponent(eventId)}`);
  const report = ev.report;
  const det = report.detection || {};
  const est = det.source_estimate;
  const best = est?.candidates?.[0];
  const acts = (ACTIONS[c.state] || []).map((a) => `<button type="button" data-act="${a}" class="${a === "accept" ? "primary" : a === "reject" ? "danger" : ""}">${t(a)}</button>`).join("");
  view.innerHTML = `
    <p><a href="#/queue">← ${t("back")}</a></p>
    <h2>${esc(typeName(c.event_type))} · ${esc(c.camera_id)} ${badges(c)}</h2>
    <div class="live-box">${LIVE_HTML()}</div>
    <div class="detail">
      <section>
        <div class="player" id="player"><video id="clip" controls muted playsinline></video><canvas id="overlay"></canvas></div>
        <p><label><input type="checkbox" id="show-overlay" checked> ${t("overlay")}</label></p>
        <div id="snaps"></div>
      </section>
      <aside>
        <div class="panel"><h3>${t("details")}</h3><dl class="kv">
          <dt>${t("state")}</dt><dd id="case-state">${esc(t("st_" + c.state))}</dd>
          <dt>${t("summary")}</dt><dd>${esc(state.lang === "zh" ? report.summary_zh : report.summary_en)}</dd>
          <dt>${t("zone")}</dt><dd>${esc(det.zone?.zone_id || "")}</dd>
          <dt>${t("created")}</dt><dd>${esc(fmtTime(det.first_seen_at))}</dd>
          <dt>${t("sla")}</dt><dd>${slaCell(c) || "—"}</dd>
          <dt>${t("level")}</dt><dd>${c.escalation_level} ${esc(c.assignee || "")}</dd>
          ${best ? `<dt>${t("origin")}</dt><dd id="origin">${esc(est.building_id)}# ${esc(est.unit || "")} · ${best.floor}F · ${esc(best.window_column || "")} (${Math.round(best.probability * 100)}%)</dd>` : ""}
        </dl></div>
        <div class="panel"><div class="actions" id="actions">${acts}
          <button type="button" id="export">${t("export")}</button></div><p id="msg" class="hint"></p></div>
        <div class="panel"><h3>${t("history")}</h3><ol class="timeline" id="history">${c.history.map((h) => `
          <li><time>${esc(fmtTime(h.at))}</time>${esc(h.action)} → ${esc(t("st_" + h.to))} · ${esc(h.actor)}${h.reason_code ? " · " + esc(t(h.reason_code)) : ""}${h.reason ? " · " + esc(h.reason) : ""}</li>`).join("")}</ol></div>
      </aside>
    </div>`;
  wireLive(view.querySelector(".live-box"), c.camera_id);
  view.querySelectorAll("[data-act]").forEach((b) => {
    b.onclick = async () => {
      const a = b.dataset.act;
      const extra = {};
      if (a === "reject") { const code = await askReject(); if (!code) return; extra.reason_code = code; }
      if (NEEDS_REASON.has(a)) { const r = prompt(t("reason")); if (!r) return; extra.reason = r; }
      try { await act(caseId, a, extra); renderCase(caseId); } catch (e) { $("#msg").textContent = e.message; }
    };
  });
  $("#export").onclick = async () => {
    const purpose = prompt(t("reason"));
    if (!purpose) return;
    try {
      const r = await apiJson(`/cases/${encodeURIComponent(caseId)}/export`, { method: "POST", json: { purpose, shared: true } });
      $("#msg").textContent = `${t("exported")}: ${r.package} · sha256 ${r.manifest_sha256.slice(0, 16)}…`;
    } catch (e) { $("#msg").textContent = e.message; }
  };
  // media last: the buttons work while the clip and pictures are still loading
  await playClip(eventId, report, ev.summary.links);
  const snaps = $("#snaps");
  for (const name of ["first", "alert", "end"]) {
    const u = await blobUrl(`/events/${encodeURIComponent(eventId)}/snapshot.jpg?name=${name}`);
    if (u) snaps.insertAdjacentHTML("beforeend", `<img src="${u}" alt="${name}" style="width:32%;margin-right:1%">`);
  }
  if (c.after_snapshot) {
    const u = await blobUrl(c.after_snapshot);
    if (u) snaps.insertAdjacentHTML("beforeend", `<p>${t("after")}</p><img src="${u}" alt="after" style="width:48%">`);
  }
}

async function renderCameras() {
  const view = $("#view");
  let cams;
  try { cams = await apiJson("/cameras"); } catch (e) { view.innerHTML = `<p class="error">${esc(e.message)}</p>`; return; }
  view.innerHTML = `<h2>${t("cameras_title")}</h2><div class="cams">${cams.map((c) => {
    const h = c.health || {};
    return `<div class="panel" data-cam="${esc(c.camera_id)}"><h3>${esc(c.name)} (${esc(c.camera_id)})</h3>
      <p class="state-${esc((h.state || "offline").toLowerCase())}">${esc(h.state || "—")}</p>
      <p class="hint">${t("fps")} ${h.fps_in ?? "—"} · ${t("drops")} ${h.drops ?? "—"} · ${t("reconnects")} ${h.reconnects ?? "—"}${h.decoder ? ` · <span class="decoder">${t("decoder")} ${esc(h.decoder)}</span>` : ""}</p>
      ${LIVE_HTML()}
      ${c.view ? `<p class="view view-${esc(c.view)}">${t("view")}: ${esc(t("view_" + c.view))}</p>` : ""}
      ${c.sway_px != null ? `<p class="sway hint">${t("sway")} ±${esc(c.sway_px)} px · ${t("sway_hint")}</p>` : ""}
      ${c.view && !["ok", "learning"].includes(c.view) ? `<p class="error">${t("view_paused")}</p>
        <button type="button" class="confirm-view">${t("confirm_view")}</button>` : ""}
      <h3>${t("health_history")} <span class="uptime"></span></h3><div class="timebar"></div><ol class="timeline changes"></ol></div>`;
  }).join("")}</div>`;
  for (const c of cams) {
    const panel = view.querySelector(`.panel[data-cam="${CSS.escape(c.camera_id)}"]`);
    wireLive(panel, c.camera_id);
    const confirm = panel.querySelector(".confirm-view");
    if (confirm) confirm.addEventListener("click", async () => {
      try {
        await apiJson(`/cameras/${encodeURIComponent(c.camera_id)}/view/confirm`, { method: "POST" });
        renderCameras();
      } catch (e) { confirm.insertAdjacentHTML("afterend", `<p class="error">${esc(e.message)}</p>`); }
    });
    let hist;
    try { hist = await apiJson(`/cameras/${encodeURIComponent(c.camera_id)}/health/history`); } catch (e) { continue; }
    panel.querySelector(".uptime").textContent = hist.uptime_24h == null ? "" : `· ${t("uptime")} ${Math.round(hist.uptime_24h * 1000) / 10}%`;
    const ch = hist.changes, now = Date.now() / 1000, t0 = ch.length ? ch[0].at : now;
    // one strip from the first known state to now, coloured by state
    panel.querySelector(".timebar").innerHTML = ch.map((x, i) => {
      const end = i + 1 < ch.length ? ch[i + 1].at : now;
      return `<span class="seg state-bg-${esc(x.state.toLowerCase())}" style="width:${Math.max(0.5, ((end - x.at) / Math.max(1, now - t0)) * 100)}%" title="${esc(x.state)} ${esc(fmtEpoch(x.at))}"></span>`;
    }).join("");
    panel.querySelector(".changes").innerHTML = ch.slice(-8).reverse().map((x) => `<li><time>${esc(fmtEpoch(x.at))}</time>${esc(x.state)}${x.reason ? " · " + esc(x.reason) : ""}</li>`).join("");
  }
}

async function renderScene() {
  const view = $("#view");
  let cams, grids, open;
  try {
    [cams, grids, open] = await Promise.all([apiJson("/cameras"), apiJson("/stats/grids"),
      apiJson("/cases?open_only=true&limit=500")]);
  } catch (e) { view.innerHTML = `<p class="error">${esc(e.message)}</p>`; return; }
  const perZone = {};
  for (const c of open.items) {
    const k = `${c.camera_id}|${c.zone_id}`;
    (perZone[k] = perZone[k] || []).push(c);
  }
  view.innerHTML = `<h2>${t("grids_title")}</h2>
    <table id="grids"><thead><tr><th>${t("grid")}</th><th>${t("open_cases")}</th><th>${t("urgent_n")}</th>
      <th>${t("hotspot")}</th><th>${t("type")}</th></tr></thead><tbody>${grids.map((g) => `
      <tr><td>${esc(g.grid_code)}</td><td>${g.open}</td><td>${g.urgent}</td><td>${g.hotspots}</td>
      <td>${Object.entries(g.by_type).map(([k, n]) => `${esc(typeName(k))} ×${n}`).join("，")}</td></tr>`).join("")
      || `<tr><td colspan="5" class="hint">${t("none")}</td></tr>`}</tbody></table>
    <h2>${t("scene_title")}</h2><div class="cams" id="scenes">${cams.map((c) => `
      <div class="panel"><h3>${esc(c.name)} (${esc(c.camera_id)}) · ${esc(c.grid_code || "")}</h3>
        <div class="player" data-cam="${esc(c.camera_id)}"><img alt="${esc(c.camera_id)}"><canvas></canvas></div>
        <ul class="hint">${c.zones.map((z) => { const n = (perZone[`${c.camera_id}|${z.zone_id}`] || []).length;
          return `<li>${esc(z.name || z.zone_id)} (${esc(z.kind)})${n ? ` — <a href="#/cases">${t("open_cases")} ${n}</a>` : ""}</li>`; }).join("")}</ul>
      </div>`).join("")}</div>`;
  for (const c of cams) {
    const box = view.querySelector(`.player[data-cam="${CSS.escape(c.camera_id)}"]`);
    const img = box.querySelector("img"), canvas = box.querySelector("canvas");
    const url = await blobUrl(`/cameras/${encodeURIComponent(c.camera_id)}/snapshot.jpg`);
    const draw = () => {
      const w = img.naturalWidth || 640, h = img.naturalHeight || 360;
      canvas.width = w; canvas.height = h;
      const g = canvas.getContext("2d");
      g.lineWidth = Math.max(2, w / 400); g.font = `${Math.round(w / 40)}px sans-serif`;
      for (const z of c.zones) {
        const hot = (perZone[`${c.camera_id}|${z.zone_id}`] || []).length;
        g.strokeStyle = hot ? "#ff4d4f" : "#ffb000"; g.fillStyle = g.strokeStyle;
        g.beginPath(); z.polygon.forEach(([x, y], i) => (i ? g.lineTo(x * w, y * h) : g.moveTo(x * w, y * h)));
        g.closePath(); g.stroke();
        const [x0, y0] = z.polygon[0];
        g.fillText(`${z.name || z.zone_id}${hot ? " ●" + hot : ""}`, x0 * w + 4, y0 * h + w / 40);
      }
      canvas.dataset.drawn = "1";
    };
    if (url) { img.onload = draw; img.onerror = draw; img.src = url; }
    else { img.style.minHeight = "180px"; img.alt = t("no_frame"); draw(); }
  }
}

function bars(entries, max) {
  return entries.map(([label, n, title]) => `<div class="bar"><span class="bar-label">${esc(label)}</span>
    <span class="bar-fill" style="width:${max ? Math.round((n / max) * 100) : 0}%" title="${esc(title || "")}"></span>
    <span class="bar-n">${n}</span></div>`).join("");
}

async function renderDashboard() {
  const view = $("#view");
  let d;
  try { d = await apiJson("/stats/dashboard?days=14"); } catch (e) { view.innerHTML = `<p class="error">${esc(e.message)}</p>`; return; }
  const days = Object.entries(d.events_per_day).map(([day, types]) => [day, Object.values(types).reduce((a, b) => a + b, 0),
    Object.entries(types).map(([k, n]) => `${typeName(k)} ${n}`).join(", ")]);
  const maxDay = Math.max(0, ...days.map((x) => x[1]));
  const states = Object.entries(d.cases_by_state).map(([k, n]) => [t("st_" + k), n]);
  const maxState = Math.max(0, ...states.map((x) => x[1]));
  const sla = d.sla.compliance == null ? "—" : `${Math.round(d.sla.compliance * 100)}%`;
  view.innerHTML = `<h2>${t("dash_title")}</h2>
    <div class="detail"><section>
      <div class="panel"><h3>${t("per_day")}</h3><div id="per-day">${bars(days, maxDay) || `<p class="hint">${t("none")}</p>`}</div></div>
      <div class="panel"><h3>${t("precision_title")}</h3><table><thead><tr><th>${t("camera")}</th><th>${t("zone")}</th>
        <th>${t("type")}</th><th>${t("accepted")}</th><th>${t("rejected")}</th><th>${t("precision")}</th><th>${t("suggestion")}</th></tr></thead>
        <tbody>${d.review.map((r) => `<tr><td>${esc(r.camera_id)}</td><td>${esc(r.zone_id || "")}</td><td>${esc(typeName(r.event_type))}</td>
          <td>${r.accepted}</td><td>${r.rejected}</td><td>${r.precision == null ? "—" : Math.round(r.precision * 100) + "%"}</td>
          <td>${esc(r.suggestion || "")}</td></tr>`).join("") || `<tr><td colspan="7" class="hint">${t("none")}</td></tr>`}</tbody></table></div>
    </section><aside>
      <div class="panel"><h3>${t("sla_title")}</h3><p id="sla-compliance" style="font-size:28px;margin:0">${sla}</p>
        <p class="hint">${d.sla.on_time} / ${d.sla.dispatched}</p></div>
      <div class="panel"><h3>${t("by_state")}</h3>${bars(states, maxState) || `<p class="hint">${t("none")}</p>`}</div>
    </aside></div>`;
}



// -- analyst search and replay ------------------------------------------------------------------

async function renderSearch() {
  const view = $("#view");
  let cams = [];
  try { cams = await apiJson("/cameras"); } catch (e) { /* integrators see no events anyway */ }
  const q = state.search || (state.search = { camera: "", type: "", from: "", to: "" });
  view.innerHTML = `<h2>${t("search_title")}</h2>
    <form class="filters" id="search-form">
      <label>${t("camera")} <select name="camera"><option value="">${t("all")}</option>${cams.map((c) => `<option value="${esc(c.camera_id)}" ${q.camera === c.camera_id ? "selected" : ""}>${esc(c.name)}</option>`).join("")}</select></label>
      <label>${t("type")} <select name="type"><option value="">${t("all")}</option>${Object.keys(TYPES).map((k) => `<option value="${k}" ${q.type === k ? "selected" : ""}>${esc(typeName(k))}</option>`).join("")}</select></label>
      <label>${t("from")} <input type="datetime-local" name="from" value="${esc(q.from)}"></label>
      <label>${t("to")} <input type="datetime-local" name="to" value="${esc(q.to)}"></label>
      <button type="submit" class="primary">${t("search")}</button></form>
    <div class="detail"><section><table id="results"><thead><tr><th>${t("created")}</th><th>${t("type")}</th><th>${t("camera")}</th><th>${t("zone")}</th><th>${t("state")}</th></tr></thead><tbody></tbody></table>
      <p id="search-total" class="hint"></p></section>
      <aside id="replay"></aside></div>`;
  $("#search-form").onsubmit = (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    Object.assign(q, { camera: f.get("camera"), type: f.get("type"), from: f.get("from"), to: f.get("to") });
    runSearch();
  };
  runSearch();
}

async function runSearch() {
  const q = state.search, p = new URLSearchParams({ limit: "200" });
  if (q.camera) p.set("camera_id", q.camera);
  if (q.type) p.set("event_type", q.type);
  // datetime-local is the browser's local time; the API takes ISO-8601 with an offset
  if (q.from) p.set("since", new Date(q.from).toISOString());
  if (q.to) p.set("until", new Date(q.to).toISOString());
  let page;
  try { page = await apiJson(`/events?${p}`); } catch (e) { $("#search-total").textContent = e.message; return; }
  const body = $("#results tbody");
  body.innerHTML = page.items.map((ev) => `<tr class="row" data-id="${esc(ev.event_id)}"><td>${esc(fmtEpoch(ev.started_at))}</td>
    <td>${esc(typeName(ev.event_type))}</td><td>${esc(ev.camera_id)}</td><td>${esc(ev.zone_id || "")}</td><td>${esc(eventState(ev))}</td></tr>`).join("")
    || `<tr><td colspan="5" class="hint">${t("none")}</td></tr>`;
  $("#search-total").textContent = `${page.items.length} / ${page.total}`;
  body.querySelectorAll("tr.row").forEach((tr) => { tr.onclick = () => { body.querySelectorAll("tr").forEach((r) => r.classList.remove("selected")); tr.classList.add("selected"); replayEvent(tr.dataset.id); }; });
}

async function replayEvent(eventId) {
  const box = $("#replay");
  state.blobs.forEach((u) => URL.revokeObjectURL(u)); state.blobs = [];
  const ev = await apiJson(`/events/${encodeURIComponent(eventId)}`);
  const cases = await apiJson(`/cases?event_id=${encodeURIComponent(eventId)}`).catch(() => ({ items: [] }));
  const c = cases.items[0];
  box.innerHTML = `<div class="panel"><h3>${esc(typeName(ev.summary.event_type))} · ${esc(ev.summary.camera_id)}</h3>
    <div class="player"><video id="clip" controls muted playsinline></video><canvas id="overlay"></canvas></div>
    <p><label><input type="checkbox" id="show-overlay" checked> ${t("overlay")}</label>
      ${c ? ` · <a href="#/case/${encodeURIComponent(c.case_id)}">${esc(t("st_" + c.state))}</a>` : ""}</p></div>
    <div class="panel"><h3>${t("before_after")}</h3><div class="compare" id="compare"><figure><figcaption>${t("before")}</figcaption><img id="before" alt="before"></figure>
      <figure><figcaption>${t("after")}</figcaption><img id="after" alt="after"><p class="hint" id="no-after"></p></figure></div></div>`;
  await playClip(eventId, ev.report, ev.summary.links);
  const before = await blobUrl(`/events/${encodeURIComponent(eventId)}/snapshot.jpg?name=alert`);
  if (before) $("#before").src = before;
  const after = c?.after_snapshot ? await blobUrl(c.after_snapshot) : null;
  if (after) $("#after").src = after; else { $("#after").remove(); $("#no-after").textContent = t("none"); }
}

// -- zone editor (integrators) ---------------------------------------------------------------

const ZONE_KINDS = ["no_parking", "fire_lane", "walkway", "roadway", "shop_front", "permitted_stall",
  "bin_area", "litter_area", "facade"];
const ed = { cam: "", zones: [], facades: [], sel: null, mode: null, drawing: [], drag: null, dirty: false, w: 1280, h: 720 };

async function renderZones() {
  const view = $("#view");
  let cams;
  try { cams = await apiJson("/cameras"); } catch (e) { view.innerHTML = `<p class="error">${esc(e.message)}</p>`; return; }
  if (!ed.cam || !cams.some((c) => c.camera_id === ed.cam)) ed.cam = cams[0]?.camera_id || "";
  view.innerHTML = `<h2>${t("zones_title")}</h2>
    <div class="filters"><label>${t("camera")} <select id="ed-cam">${cams.map((c) =>
      `<option value="${esc(c.camera_id)}" ${c.camera_id === ed.cam ? "selected" : ""}>${esc(c.name)} (${esc(c.camera_id)})</option>`).join("")}</select></label>
      <button type="button" id="ed-new">${t("new_zone")}</button><button type="button" id="ed-finish">${t("finish")}</button>
      <button type="button" id="ed-new-facade">${t("new_facade")}</button>
      <button type="button" id="ed-validate">${t("validate")}</button><button type="button" class="primary" id="ed-save">${t("save_apply")}</button>
      <label><input type="checkbox" id="ed-activity"> ${t("activity")}</label>
      <span id="ed-dirty" class="hint"></span></div>
    <p class="hint">${t("editor_hint")}</p>
    <div class="detail"><section><div class="player editor"><img id="ed-img" alt=""><canvas id="ed-canvas"></canvas></div></section>
      <aside><div class="panel"><h3>${t("zone")}</h3><div id="ed-zones"></div></div>
        <div class="panel"><h3>${t("facades")}</h3><div id="ed-facades"></div></div>
        <div class="panel"><ul id="ed-issues" class="issues"></ul><p id="ed-msg" class="hint"></p></div></aside></div>`;
  $("#ed-cam").onchange = (e) => { ed.cam = e.target.value; ed.dirty = false; renderZones(); };
  $("#ed-new").onclick = () => { ed.mode = "draw"; ed.drawing = []; edMsg(t("editor_hint")); };
  $("#ed-finish").onclick = finishDrawing;
  $("#ed-new-facade").onclick = () => {
    const zone = ed.zones.find((z) => z.kind === "facade");
    ed.facades.push({ id: `facade_${ed.facades.length + 1}`, building: "1", zone: zone ? zone.id : "",
      corners: [[0.3, 0.1], [0.7, 0.1], [0.7, 0.9], [0.3, 0.9]], bottom_floor: 1, top_floor: 6, columns: ["A", "B"], floor_height_m: 2.9 });
    ed.sel = { type: "facade", i: ed.facades.length - 1 }; markDirty();
  };
  $("#ed-validate").onclick = () => sendGeometry("validate");
  $("#ed-save").onclick = () => sendGeometry("save");
  // re-rendering (language switch) keeps unsaved drawing; a camera switch reloads from the file
  if (!(ed.dirty && ed.loaded === ed.cam)) {
    let g;
    try { g = await apiJson(`/cameras/${encodeURIComponent(ed.cam)}/geometry`); }
    catch (e) { $("#ed-msg").textContent = e.message; return; }
    ed.zones = g.zones || []; ed.facades = g.facades || []; ed.sel = ed.zones.length ? { type: "zone", i: 0 } : null;
    ed.mode = null; ed.drawing = []; ed.dirty = false; ed.editable = g.editable; ed.loaded = ed.cam;
  } else $("#ed-dirty").textContent = t("unsaved");
  if (!ed.editable) { $("#ed-save").disabled = true; $("#ed-validate").disabled = true; edMsg(t("read_only")); }
  const img = $("#ed-img"), canvas = $("#ed-canvas");
  $("#ed-activity").checked = !!ed.activity;
  $("#ed-activity").onchange = (e) => { ed.activity = e.target.checked; renderZones(); };
  // the activity map is the latest frame with where motion is normal painted over it
  let url = ed.activity ? await blobUrl(`/cameras/${encodeURIComponent(ed.cam)}/activity.jpg`) : null;
  if (ed.activity && !url) edMsg(t("no_activity"));
  if (!url) url = await blobUrl(`/cameras/${encodeURIComponent(ed.cam)}/snapshot.jpg`);
  const ready = () => { ed.w = img.naturalWidth || 1280; ed.h = img.naturalHeight || 720; edDraw(); };
  if (url) { img.onload = ready; img.onerror = () => { img.removeAttribute("src"); img.style.aspectRatio = "16 / 9"; ready(); }; img.src = url; }
  else { img.style.aspectRatio = "16 / 9"; ready(); }
  canvas.onpointerdown = edDown; canvas.onpointermove = edMove; canvas.onpointerup = () => { ed.drag = null; };
  edSide();
}

function edMsg(m) { const el = $("#ed-msg"); if (el) el.textContent = m; }
function markDirty() { ed.dirty = true; $("#ed-dirty").textContent = t("unsaved"); edSide(); edDraw(); }

function edPoint(e) {
  const r = e.target.getBoundingClientRect();
  return [Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), Math.min(1, Math.max(0, (e.clientY - r.top) / r.height))];
}

function edHandles() {
  // every draggable point: [array, index] of the selected zone's polygon/rim or façade corners
  const out = [];
  if (!ed.sel) return out;
  if (ed.sel.type === "zone") {
    const z = ed.zones[ed.sel.i]; if (!z) return out;
    z.polygon.forEach((_, k) => out.push([z.polygon, k]));
    (z.rim || []).forEach((_, k) => out.push([z.rim, k]));
  } else {
    const f = ed.facades[ed.sel.i]; if (f) f.corners.forEach((_, k) => out.push([f.corners, k]));
  }
  return out;
}

function edDown(e) {
  if (!ed.editable) return;
  const p = edPoint(e);
  const r = e.target.getBoundingClientRect(), tol = 10 / r.width;
  if (ed.mode === "draw") {
    const first = ed.drawing[0];
    if (ed.drawing.length >= 3 && Math.hypot(p[0] - first[0], (p[1] - first[1]) * r.height / r.width) < tol) { finishDrawing(); return; }
    ed.drawing.push(p); edDraw(); return;
  }
  if (ed.mode === "rim") {
    const z = ed.zones[ed.sel.i];
    ed.drawing.push(p);
    if (ed.drawing.length === 2) { z.rim = ed.drawing; ed.drawing = []; ed.mode = null; markDirty(); } else edDraw();
    return;
  }
  const hit = edHandles().find(([arr, k]) => Math.hypot(arr[k][0] - p[0], (arr[k][1] - p[1]) * r.height / r.width) < tol);
  if (!hit) return;
  const [arr, k] = hit;
  if (e.shiftKey) {
    if (ed.sel.type === "zone" && arr === ed.zones[ed.sel.i].polygon && arr.length > 3) { arr.splice(k, 1); markDirty(); }
    return;
  }
  ed.drag = hit; e.target.setPointerCapture(e.pointerId);
}

function edMove(e) {
  if (!ed.drag) return;
  const [arr, k] = ed.drag;
  arr[k] = edPoint(e); ed.dirty = true; $("#ed-dirty").textContent = t("unsaved"); edDraw();
}

function finishDrawing() {
  if (ed.mode !== "draw" || ed.drawing.length < 3) { ed.mode = null; ed.drawing = []; edDraw(); return; }
  let n = ed.zones.length + 1;
  while (ed.zones.some((z) => z.id === `zone_${n}`)) n++;
  ed.zones.push({ id: `zone_${n}`, kind: "no_parking", polygon: ed.drawing });
  ed.sel = { type: "zone", i: ed.zones.length - 1 }; ed.mode = null; ed.drawing = [];
  markDirty();
}

function lerp(a, b, s) { return [a[0] + (b[0] - a[0]) * s, a[1] + (b[1] - a[1]) * s]; }

function edDraw() {
  const canvas = $("#ed-canvas"); if (!canvas) return;
  const w = ed.w, h = ed.h;
  canvas.width = w; canvas.height = h;
  const g = canvas.getContext("2d");
  g.lineWidth = Math.max(2, w / 500); g.font = `${Math.round(w / 50)}px sans-serif`;
  const path = (pts, close) => { g.beginPath(); pts.forEach(([x, y], i) => (i ? g.lineTo(x * w, y * h) : g.moveTo(x * w, y * h))); if (close) g.closePath(); };
  const dots = (pts, color) => { g.fillStyle = color; for (const [x, y] of pts) { g.beginPath(); g.arc(x * w, y * h, Math.max(5, w / 250), 0, 7); g.fill(); } };
  ed.zones.forEach((z, i) => {
    const on = ed.sel?.type === "zone" && ed.sel.i === i;
    g.strokeStyle = on ? "#ffb000" : "#3aa0ff"; g.fillStyle = on ? "rgba(255,176,0,0.15)" : "rgba(58,160,255,0.08)";
    path(z.polygon, true); g.fill(); g.stroke();
    g.fillStyle = g.strokeStyle; g.fillText(`${z.name || z.id} · ${z.kind}`, z.polygon[0][0] * w + 4, z.polygon[0][1] * h - 4);
    if (z.rim) { g.strokeStyle = "#36c36c"; path(z.rim, false); g.stroke(); }
    if (on) { dots(z.polygon, "#ffb000"); if (z.rim) dots(z.rim, "#36c36c"); }
  });
  ed.facades.forEach((f, i) => {
    const on = ed.sel?.type === "facade" && ed.sel.i === i;
    const [tl, tr, br, bl] = f.corners;
    const floors = Math.max(1, (f.top_floor - f.bottom_floor) + 1), cols = Math.max(1, (f.columns || []).length);
    g.strokeStyle = on ? "#ff4dd2" : "rgba(255,77,210,0.6)";
    for (let k = 0; k <= floors; k++) { const s = k / floors; path([lerp(tl, bl, s), lerp(tr, br, s)], false); g.stroke(); }
    for (let k = 0; k <= cols; k++) { const s = k / cols; path([lerp(tl, tr, s), lerp(bl, br, s)], false); g.stroke(); }
    g.fillStyle = g.strokeStyle;
    for (let k = 0; k < floors; k++) { const p = lerp(bl, tl, (k + 0.5) / floors); g.fillText(`${f.bottom_floor + k}F`, p[0] * w - w / 30, p[1] * h); }
    if (on) dots(f.corners, "#ff4dd2");
  });
  if (ed.drawing.length) { g.strokeStyle = "#fff"; path(ed.drawing, false); g.stroke(); dots(ed.drawing, "#fff"); }
  canvas.dataset.drawn = String(ed.zones.length);
}

function edSide() {
  const zs = $("#ed-zones"), fs = $("#ed-facades"); if (!zs) return;
  zs.innerHTML = ed.zones.map((z, i) => `<div class="ed-row ${ed.sel?.type === "zone" && ed.sel.i === i ? "on" : ""}" data-i="${i}">
      <input type="radio" name="ed-sel" ${ed.sel?.type === "zone" && ed.sel.i === i ? "checked" : ""} data-pick="${i}">
      <input class="ed-id" data-f="id" value="${esc(z.id)}" size="12" aria-label="id">
      <select data-f="kind" aria-label="${t("kind")}">${ZONE_KINDS.map((k) => `<option ${k === z.kind ? "selected" : ""}>${k}</option>`).join("")}</select>
      <input data-f="name" value="${esc(z.name || "")}" placeholder="${t("name")}" size="10">
      ${z.kind === "bin_area" ? `<button type="button" data-rim="${i}">${t("draw_rim")}</button>` : ""}
      <button type="button" data-del="${i}" title="${t("delete_zone")}">✕</button></div>`).join("") || `<p class="hint">${t("none")}</p>`;
  zs.querySelectorAll(".ed-row").forEach((row) => {
    const z = ed.zones[Number(row.dataset.i)];
    row.querySelectorAll("[data-f]").forEach((inp) => { inp.onchange = () => { z[inp.dataset.f] = inp.value || undefined; if (z.kind !== "bin_area") delete z.rim; markDirty(); }; });
  });
  zs.querySelectorAll("[data-pick]").forEach((b) => { b.onchange = () => { ed.sel = { type: "zone", i: Number(b.dataset.pick) }; edSide(); edDraw(); }; });
  zs.querySelectorAll("[data-del]").forEach((b) => { b.onclick = () => { ed.zones.splice(Number(b.dataset.del), 1); ed.sel = null; markDirty(); }; });
  zs.querySelectorAll("[data-rim]").forEach((b) => { b.onclick = () => { ed.sel = { type: "zone", i: Number(b.dataset.rim) }; ed.mode = "rim"; ed.drawing = []; edDraw(); }; });
  const facadeZones = ed.zones.filter((z) => z.kind === "facade").map((z) => z.id);
  fs.innerHTML = ed.facades.map((f, i) => `<div class="ed-row ${ed.sel?.type === "facade" && ed.sel.i === i ? "on" : ""}" data-i="${i}">
      <input type="radio" name="ed-sel" ${ed.sel?.type === "facade" && ed.sel.i === i ? "checked" : ""} data-fpick="${i}">
      <input data-f="id" value="${esc(f.id)}" size="10" aria-label="id">
      <label>${t("building")} <input data-f="building" value="${esc(f.building)}" size="3"></label>
      <label>${t("zone")} <select data-f="zone">${facadeZones.map((z) => `<option ${z === f.zone ? "selected" : ""}>${esc(z)}</option>`).join("")}</select></label>
      <label>${t("floors")} <input data-f="bottom_floor" data-num="1" value="${f.bottom_floor}" size="2">–<input data-f="top_floor" data-num="1" value="${f.top_floor}" size="2"></label>
      <label>${t("columns")} <input data-f="columns" data-list="1" value="${esc((f.columns || []).join(","))}" size="10"></label>
      <label>${t("floor_h")} <input data-f="floor_height_m" data-num="1" value="${f.floor_height_m ?? 2.9}" size="3"></label>
      <label>${t("col_w")} <input data-f="column_width_m" data-num="1" value="${f.column_width_m ?? 3.0}" size="3"></label>
      <label title="${t("hfov_hint")}">${t("hfov")} <input data-f="hfov_deg" data-num="1" value="${f.hfov_deg ?? ""}" placeholder="${t("hfov_unknown")}" size="4"></label>
      <button type="button" data-fdel="${i}">✕</button></div>`).join("") || `<p class="hint">${t("none")}</p>`;
  fs.querySelectorAll(".ed-row").forEach((row) => {
    const f = ed.facades[Number(row.dataset.i)];
    row.querySelectorAll("[data-f]").forEach((inp) => { inp.onchange = () => {
      const v = inp.value.trim();
      // an emptied number is "not given" (its default, or no lens), not zero
      f[inp.dataset.f] = inp.dataset.num ? (v === "" ? undefined : Number(v)) : inp.dataset.list ? v.split(/[,，\s]+/).filter(Boolean) : v;
      markDirty(); }; });
  });
  fs.querySelectorAll("[data-fpick]").forEach((b) => { b.onchange = () => { ed.sel = { type: "facade", i: Number(b.dataset.fpick) }; edSide(); edDraw(); }; });
  fs.querySelectorAll("[data-fdel]").forEach((b) => { b.onclick = () => { ed.facades.splice(Number(b.dataset.fdel), 1); ed.sel = null; markDirty(); }; });
}

async function sendGeometry(how) {
  const body = JSON.stringify({ zones: ed.zones, facades: ed.facades });
  const path = `/cameras/${encodeURIComponent(ed.cam)}/geometry${how === "validate" ? "/validate" : ""}`;
  const res = await api(path, { method: how === "validate" ? "POST" : "PUT", headers: { "Content-Type": "application/json" }, body });
  const out = await res.json().catch(() => ({}));
  const list = $("#ed-issues");
  list.innerHTML = (out.issues || []).map((i) => `<li class="error"><b>${esc(i.location)}</b>: ${esc(i.message)}</li>`).join("")
    + (out.facade_fits || []).map((f) => `<li class="${f.ok ? "ok" : "error"}"><b>${t("camera_fit")} ${esc(f.id)}</b>: ${esc(f.message)}</li>`).join("");
  if (!res.ok) { edMsg(out.detail ? String(out.detail) : ""); return; }
  if (how === "validate") { edMsg(t("valid")); return; }
  ed.dirty = false; $("#ed-dirty").textContent = "";
  edMsg(`${t("saved")} · ${out.applied ? t("applied") : t("not_applied")}`);
}

// -- shell -----------------------------------------------------------------------------------

function applyLang() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $("#lang").textContent = state.lang === "zh" ? "EN" : "中文";
  document.title = t("title");
}

function route() {
  applyLang();
  const h = location.hash || "#/queue";
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", h.startsWith(a.getAttribute("href"))));
  if (!signedIn()) { showLogin(); return; }
  stopLives();
  // A screen still loading when another is chosen finishes into the view it began with, now
  // detached: it never overwrites the screen chosen after it (signing in starts the queue;
  // going straight on to the cameras, the queue's late answer replaced them).
  const old = $("#view");
  old.replaceWith(old.cloneNode(false));
  if (h.startsWith("#/case/")) renderCase(decodeURIComponent(h.slice(7)));
  else if (h.startsWith("#/cases")) renderList(false);
  else if (h.startsWith("#/cameras")) renderCameras();
  else if (h.startsWith("#/scene")) renderScene();
  else if (h.startsWith("#/dashboard")) renderDashboard();
  else if (h.startsWith("#/zones")) renderZones();
  else if (h.startsWith("#/search")) renderSearch();
  else renderList(true);
}

function showLogin(error = "") {
  $("#login-error").textContent = error;
  const d = $("#login");
  if (!d.open) d.showModal();
}

document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, select, textarea, dialog")) return;
  const h = location.hash || "#/queue";
  if (!(h.startsWith("#/queue") || h.startsWith("#/cases"))) return;
  const k = e.key.toLowerCase();
  if (k === "arrowdown" || k === "j" || k === "n") { select(state.selected + 1); e.preventDefault(); }
  else if (k === "arrowup" || k === "k") { select(state.selected - 1); e.preventDefault(); }
  else if (k === "enter" && state.rows[state.selected]) location.hash = `#/case/${state.rows[state.selected].case_id}`;
  else if (h.startsWith("#/queue") && k === "a") keyAction("accept");
  else if (h.startsWith("#/queue") && k === "r") keyAction("reject");
});

$("#login-form").addEventListener("submit", async (e) => {
  // asked on the sign-in click: browsers allow the question only after a user gesture
  if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
  const name = $("#name-input").value.trim(), password = $("#password-input").value;
  if (name && password) {
    e.preventDefault();  // the dialog stays open until the server said yes
    const r = await fetch("/auth/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name, password }) });
    if (!r.ok) { $("#login-error").textContent = t("bad_login"); return; }
    const s = await r.json();
    state.user = s.name; state.csrf = s.csrf_token; state.token = "";
    $("#password-input").value = "";
    $("#login").close();
  } else {
    state.token = $("#token-input").value.trim();
    sessionStorage.setItem("gs_token", state.token);
  }
  startLive();
  route();
});
$("#lang").onclick = () => { state.lang = state.lang === "zh" ? "en" : "zh"; localStorage.setItem("gs_lang", state.lang); route(); };
$("#logout").onclick = async () => {
  if (state.user) await api("/auth/logout", { method: "POST" }).catch(() => {});
  sessionStorage.removeItem("gs_token"); state.token = ""; state.user = null; state.csrf = null;
  if (liveAbort) liveAbort.abort();
  route();
};
window.addEventListener("hashchange", route);
setInterval(() => document.querySelectorAll(".sla[data-deadline]").forEach((el) => {
  const s = Math.round((new Date(el.dataset.deadline) - Date.now()) / 1000);
  el.classList.toggle("over", s < 0);
}), 1000);
// A session cookie (or a login proxy) may already say who this is; a page reload keeps it.
(async () => {
  if (!state.token) {
    const r = await fetch("/auth/session").catch(() => null);
    if (r && r.ok) { const s = await r.json(); state.user = s.name; state.csrf = s.csrf_token; }
  }
  if (signedIn()) startLive();
  route();
})();
