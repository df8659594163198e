/* 银龄 family page: pairs this phone, then shows reminders, doses, alerts, messages and status (CONTRACTS.md §7). */
"use strict";
(() => {
  const API = "/api/v1/family";
  const TOKEN_KEY = "yinling.family.token";
  const NAME_KEY = "yinling.family.name";
  const DAYS = ["一", "二", "三", "四", "五", "六", "日"];
  const DOSE_STATUS = { taken: "已吃", missed: "没吃", pending: "待吃" };
  const ALERT_KIND = { emergency: "紧急求助", help: "老人求助", sos: "紧急按钮", fall: "可能摔倒", inactivity: "长时间没有动静",
                       missed_medication: "漏吃药", sensor_offline: "传感器离线" };
  const $ = (id) => document.getElementById(id);
  let current = "reminders";
  let alertTimer = null;
  let alertsShown = "";

  const esc = (text) => String(text ?? "").replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const token = () => localStorage.getItem(TOKEN_KEY);
  const clock = (iso) => {
    if (!iso) return "—";
    const d = new Date(iso);
    return `${d.getMonth() + 1}月${d.getDate()}日 ${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  };
  const hhmm = (iso) => { const d = new Date(iso); return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`; };
  const percent = (ratio) => (ratio === null || ratio === undefined ? "—" : `${Math.round(ratio * 100)}%`);

  function showError(text) {
    const box = $("error");
    box.textContent = text || "";
    box.hidden = !text;
  }

  async function call(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const t = token();
    if (t) headers["Authorization"] = `Bearer ${t}`;
    let response;
    try {
      response = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new Error("连不上家里的音箱，请检查网络。");
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if ((response.status === 401 || response.status === 403) && path !== "/pair") {
      logout();
      throw new Error("这台手机需要重新绑定。");
    }
    if (!response.ok) throw new Error((data && data.error) || `出错了（${response.status}）`);
    return data;
  }

  // ---- pairing -------------------------------------------------------------------------------
  function showApp() {
    const paired = Boolean(token());
    $("pair").hidden = paired;
    $("app").hidden = !paired;
    $("logout").hidden = !paired;
    if (paired) {
      select(current);
      if (!alertTimer) alertTimer = setInterval(() => loadAlerts().catch(() => {}), 2000);
      loadAlerts().catch(() => {});
    } else if (alertTimer) {
      clearInterval(alertTimer);
      alertTimer = null;
    }
  }

  function logout() {
    localStorage.removeItem(TOKEN_KEY);
    showApp();
  }

  $("pair-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const code = $("pair-code").value.trim();
    const name = $("pair-name").value.trim();
    if (!/^\d{6}$/.test(code)) { showError("绑定码是 6 位数字。"); return; }
    try {
      const data = await call("POST", "/pair", { code, name });
      localStorage.setItem(TOKEN_KEY, data.token);
      localStorage.setItem(NAME_KEY, name);
      showError("");
      $("pair-form").reset();
      showApp();
    } catch (e) { showError(`绑定没有成功：${e.message}`); }
  });
  $("logout").addEventListener("click", () => { if (confirm("确定让这台手机退出吗？")) logout(); });

  // ---- tabs ----------------------------------------------------------------------------------
  const loaders = { reminders: loadReminders, doses: loadDoses, alerts: loadAlerts, messages: async () => {}, status: loadStatus };
  function select(tab) {
    current = tab;
    for (const button of document.querySelectorAll(".tabs button")) {
      const on = button.dataset.tab === tab;
      button.classList.toggle("active", on);
      button.setAttribute("aria-selected", String(on));
    }
    for (const name of Object.keys(loaders)) $(name).hidden = name !== tab;
    loaders[tab]().then(() => showError("")).catch((e) => showError(e.message));
  }
  for (const button of document.querySelectorAll(".tabs button")) button.addEventListener("click", () => select(button.dataset.tab));

  // ---- reminders -----------------------------------------------------------------------------
  const dayBox = document.querySelector(".days");
  DAYS.forEach((name, i) => {
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" value="${i + 1}" checked data-testid="reminder-day-${i + 1}">${name}`;
    dayBox.appendChild(label);
  });

  async function loadReminders() {
    const data = await call("GET", "/reminders");
    const list = $("reminder-list");
    if (!data.reminders.length) { list.innerHTML = `<li class="empty" data-testid="reminders-empty">还没有提醒。</li>`; return; }
    list.innerHTML = data.reminders.map((r) => {
      const days = r.days.length === 7 ? "每天" : "星期" + r.days.map((d) => DAYS[d - 1]).join("、");
      return `<li class="reminder${r.paused ? " paused" : ""}" data-testid="reminder-${esc(r.id)}" data-id="${esc(r.id)}" data-paused="${r.paused}">
        <div class="title">${esc(r.medicine)}${r.dose ? " · " + esc(r.dose) : ""}</div>
        <div class="meta">${esc(days)} ${esc(r.times.join("、"))}${r.paused ? " ·（已暂停）" : ""}</div>
        <div class="actions">
          <button class="secondary" data-action="pause" data-testid="reminder-pause-${esc(r.id)}">${r.paused ? "恢复" : "暂停"}</button>
          <button class="danger" data-action="delete" data-testid="reminder-delete-${esc(r.id)}">删除</button>
        </div></li>`;
    }).join("");
  }

  $("reminder-list").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const item = button.closest("li");
    const id = item.dataset.id;
    try {
      if (button.dataset.action === "pause") {
        await call("PATCH", `/reminders/${encodeURIComponent(id)}`, { paused: item.dataset.paused !== "true" });
      } else if (confirm("确定删除这个提醒吗？")) {
        await call("DELETE", `/reminders/${encodeURIComponent(id)}`);
      }
      await loadReminders();
      showError("");
    } catch (e) { showError(e.message); }
  });

  $("reminder-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const times = $("r-times").value.split(/[,，、\s]+/).filter(Boolean)
      .map((t) => t.replace("：", ":")).map((t) => (/^\d:\d\d$/.test(t) ? "0" + t : t));
    const days = [...dayBox.querySelectorAll("input:checked")].map((box) => Number(box.value));
    if (!times.length || times.some((t) => !/^([01]\d|2[0-3]):[0-5]\d$/.test(t))) { showError("时间要写成 08:00 这样。"); return; }
    if (!days.length) { showError("至少选一天。"); return; }
    try {
      await call("POST", "/reminders", { kind: "medication", medicine: $("r-medicine").value.trim(),
                                         dose: $("r-dose").value.trim(), times, days });
      $("reminder-form").reset();
      dayBox.querySelectorAll("input").forEach((box) => { box.checked = true; });
      await loadReminders();
      showError("");
    } catch (e) { showError(`没有加上：${e.message}`); }
  });

  // ---- doses ---------------------------------------------------------------------------------
  async function loadDoses() {
    const data = await call("GET", "/doses");
    $("adh-7").textContent = percent(data.adherence["7"]);
    $("adh-30").textContent = percent(data.adherence["30"]);
    const list = $("dose-list");
    if (!data.doses.length) { list.innerHTML = `<li class="empty" data-testid="doses-empty">今天没有要吃的药。</li>`; return; }
    list.innerHTML = data.doses.map((d) => `<li class="dose" data-testid="dose-${esc(d.reminder_id)}-${hhmm(d.scheduled)}"
        data-reminder="${esc(d.reminder_id)}" data-status="${esc(d.status)}">
      <div class="title">${hhmm(d.scheduled)} ${esc(d.medicine)}${d.dose ? " · " + esc(d.dose) : ""}</div>
      <div class="meta" data-testid="dose-status">${DOSE_STATUS[d.status] || esc(d.status)}${d.taken_at ? "（" + hhmm(d.taken_at) + " 吃的）" : ""}</div>
    </li>`).join("");
  }

  // ---- alerts (polled every 2 s) ---------------------------------------------------------------
  async function loadAlerts() {
    if (!token()) return;
    const data = await call("GET", "/alerts");
    const open = data.alerts.filter((a) => a.status === "open");
    const badge = $("alert-badge");
    badge.textContent = String(open.length);
    badge.hidden = !open.length;
    const list = $("alert-list");
    const key = JSON.stringify(data.alerts);
    if (key === alertsShown) return;  // unchanged: keep the buttons under the finger
    alertsShown = key;
    if (!data.alerts.length) { list.innerHTML = `<li class="empty" data-testid="alerts-empty">没有警报，一切正常。</li>`; return; }
    list.innerHTML = data.alerts.map((a) => `<li class="alert" data-testid="alert-${esc(a.id)}" data-id="${esc(a.id)}" data-status="${esc(a.status)}">
      <div class="title">${esc(ALERT_KIND[a.kind] || a.kind)}${a.room ? " · " + esc(a.room) : ""}</div>
      <div class="meta">${clock(a.opened_at)} · ${a.status === "open" ? "正在处理中" : "已处理" + (a.closed_by ? "（" + esc(a.closed_by.replace(/^family:/, "")) + "）" : "")}</div>
      ${a.status === "open" ? `<div class="actions"><button data-action="ack" data-testid="alert-ack-${esc(a.id)}">我来处理</button></div>` : ""}
    </li>`).join("");
  }

  $("alert-list").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action=ack]");
    if (!button) return;
    button.disabled = true;
    try {
      await call("POST", `/alerts/${encodeURIComponent(button.closest("li").dataset.id)}/ack`);
      showError("");
    } catch (e) { showError(e.message); }
    alertsShown = "";
    await loadAlerts().catch(() => {});
  });

  // ---- messages ------------------------------------------------------------------------------
  $("message-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = $("message-result");
    try {
      await call("POST", "/messages", { text: $("message-text").value.trim() });
      $("message-form").reset();
      result.textContent = "已发送，音箱会念给老人听。";
      result.hidden = false;
      showError("");
    } catch (e) { result.hidden = true; showError(`没有发出去：${e.message}`); }
  });

  // ---- status --------------------------------------------------------------------------------
  async function loadStatus() {
    const data = await call("GET", "/status");
    const sensors = data.sensors.length ? data.sensors.map((s) => `<li data-testid="sensor-${esc(s.name)}">
        ${esc(s.room || s.name)} ${esc(s.role)}：<span class="${s.online ? "online" : "offline"}">${s.online ? "在线" : "离线"}</span>
        · 最后 ${clock(s.last_seen)}${s.battery !== null && s.battery !== undefined ? " · 电量 " + esc(s.battery) + "%" : ""}</li>`).join("")
      : "<li>没有连接传感器。</li>";
    $("status-body").innerHTML = `
      <p data-testid="status-assistant">音箱：<span class="${data.assistant.online ? "online" : "offline"}">${data.assistant.online ? "在线" : "离线"}</span></p>
      <p data-testid="status-activity">老人最近活动：${clock(data.last_activity)}</p>
      <h3>传感器</h3><ul>${sensors}</ul>`;
  }

  showApp();
})();
