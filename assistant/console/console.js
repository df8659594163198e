// Staff console of the yinling community platform: polls the API every 2 s and lets staff move orders on.
// Stable hooks for browser tests: rows are data-testid="order-<id>" / "alert-<id>" with data-status,
// buttons "accept-<id>", "dispatch-<id>", "done-<id>", "cancel-<id>", "ack-<id>", inputs "eta-<id>".
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "yinling-staff-token";

const SERVICE_NAMES = {
  meal: "送餐", cleaning: "保洁", bathing: "助浴", medical: "医疗上门", escort: "陪同",
  repair: "维修", errand: "跑腿代办", legal: "法律援助", laundry: "洗衣", haircut: "理发",
};
const STATUS_NAMES = {
  received: "新订单", accepted: "已接单", dispatched: "已派送", done: "已完成", cancelled: "已取消",
};
const MEAL_NAMES = { breakfast: "早饭", lunch: "午饭", dinner: "晚饭" };
const ALERT_NAMES = {
  emergency: "紧急求助", help: "求助", fall: "摔倒", gas: "燃气泄漏", smoke: "烟雾", water_leak: "漏水",
  sos: "紧急按钮", inactivity: "长时间无活动", missed_medication: "漏服药", bathroom: "卫生间久留",
  door_open: "门未关",
};
const LEVEL_NAMES = { family: "通知家属", community: "社区上门", emergency: "急救" };
const REASON_NAMES = {
  fall: "摔倒", chest_pain: "胸口疼", breathing: "喘不上气", dizzy: "头晕", bleeding: "出血", unwell: "不舒服",
};
const DETAIL_NAMES = { quantity: "份数", dish: "菜", time: "时间", notes: "备注", date: "日期" };
// Which buttons an order in each status offers: [label, new status, css class].
const ACTIONS = [["接单", "accepted", "accept"], ["派送", "dispatched", "dispatch"],
                 ["完成", "done", "done"], ["取消", "cancelled", "cancel"]];
const NEXT = {
  received: ["accepted", "dispatched", "cancelled"], accepted: ["dispatched", "done", "cancelled"],
  dispatched: ["done", "cancelled"], done: [], cancelled: [],
};

const $ = (id) => document.getElementById(id);
let token = "";
let timer = null;

function show(element, visible) { element.hidden = !visible; }

function showError(message) {
  $("error").textContent = message;
  show($("error"), Boolean(message));
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
  });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    logout("令牌无效，请重新输入员工令牌。");
    throw new Error("unauthorized");
  }
  if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
  return body;
}

function clock(iso) {
  const when = new Date(iso);
  if (isNaN(when)) return iso;
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(when.getMonth() + 1)}-${pad(when.getDate())} ${pad(when.getHours())}:${pad(when.getMinutes())}`;
}

function describe(order) {
  const d = order.details || {};
  const parts = [];
  if (d.meal) parts.push(MEAL_NAMES[d.meal] || d.meal);
  for (const [key, value] of Object.entries(d)) {
    if (key === "meal" || key === "service") continue;
    const name = DETAIL_NAMES[key] || key;
    parts.push(key === "quantity" ? `${value}份` : `${name}：${typeof value === "object" ? JSON.stringify(value) : value}`);
  }
  return parts.join("，");
}

function cell(row, index, text) {
  while (row.cells.length <= index) row.insertCell();
  if (row.cells[index].textContent !== text) row.cells[index].textContent = text;
  return row.cells[index];
}

function slot(row, index) {
  while (row.cells.length <= index) row.insertCell();
  return row.cells[index];
}

function keyedRow(tbody, testid, position) {
  let row = document.querySelector(`[data-testid="${testid}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.testid = testid;
  }
  if (tbody.rows[position] !== row) tbody.insertBefore(row, tbody.rows[position] || null);
  return row;
}

function renderOrders(orders) {
  const tbody = $("order-rows");
  const keep = new Set();
  orders.forEach((order, position) => {
    const testid = "order-" + order.id;
    keep.add(testid);
    const row = keyedRow(tbody, testid, position);
    row.dataset.status = order.status;
    cell(row, 0, clock(order.created_at));
    cell(row, 1, order.home_id);
    cell(row, 2, SERVICE_NAMES[order.service] || order.service);
    cell(row, 3, describe(order));
    cell(row, 4, order.utterance || "");
    cell(row, 5, STATUS_NAMES[order.status] || order.status).dataset.testid = "status-" + order.id;
    const etaCell = slot(row, 6);
    let eta = etaCell.querySelector("input");
    if (!eta) {
      eta = document.createElement("input");
      eta.className = "eta";
      eta.type = "time";
      eta.dataset.testid = "eta-" + order.id;
      etaCell.appendChild(eta);
    }
    if (document.activeElement !== eta && order.eta) eta.value = order.eta;
    const actionCell = slot(row, 7);
    if (!actionCell.querySelector("button")) {
      for (const [label, status, css] of ACTIONS) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = label;
        button.className = css;
        button.dataset.testid = `${css}-${order.id}`;
        button.addEventListener("click", () => changeStatus(order.id, status, eta.value));
        actionCell.appendChild(button);
      }
    }
    for (const button of actionCell.querySelectorAll("button")) {
      const status = ACTIONS.find(([, , css]) => button.classList.contains(css))[1];
      button.disabled = !NEXT[order.status].includes(status);
    }
  });
  for (const row of [...tbody.rows]) if (!keep.has(row.dataset.testid)) row.remove();
  $("order-count").textContent = String(orders.filter((o) => o.status === "received").length);
}

function renderAlerts(alerts) {
  const tbody = $("alert-rows");
  const keep = new Set();
  alerts.forEach((alert, position) => {
    const testid = "alert-" + alert.id;
    keep.add(testid);
    const row = keyedRow(tbody, testid, position);
    row.dataset.status = "alert-" + alert.status;
    cell(row, 0, clock(alert.created_at));
    cell(row, 1, alert.home_id);
    const level = LEVEL_NAMES[alert.level] || alert.level;
    cell(row, 2, `${ALERT_NAMES[alert.kind] || alert.kind} · ${level}` + (alert.urgent ? "（紧急）" : ""));
    cell(row, 3, REASON_NAMES[alert.reason] || alert.reason || "");
    cell(row, 4, [alert.room, alert.utterance].filter(Boolean).join(" · "));
    cell(row, 5, alert.status === "acknowledged" ? `已处理（${alert.acked_by}）` : "待处理");
    const actionCell = slot(row, 6);
    if (!actionCell.querySelector("button")) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "知道了";
      button.dataset.testid = "ack-" + alert.id;
      button.addEventListener("click", () => acknowledge(alert.id));
      actionCell.appendChild(button);
    }
    actionCell.querySelector("button").disabled = alert.status === "acknowledged";
  });
  for (const row of [...tbody.rows]) if (!keep.has(row.dataset.testid)) row.remove();
  $("alert-count").textContent = String(alerts.filter((a) => a.status === "received").length);
}

function fillSelect(select, values, names) {
  const have = new Set([...select.options].map((o) => o.value));
  for (const value of values) {
    if (have.has(value)) continue;
    const option = document.createElement("option");
    option.value = value;
    option.textContent = names ? (names[value] || value) : value;
    select.appendChild(option);
  }
}

async function refresh() {
  const home = $("filter-home").value;
  const service = $("filter-service").value;
  const query = new URLSearchParams({ limit: "200" });
  if (home) query.set("home_id", home);
  const alertQuery = new URLSearchParams(query);
  if (service) query.set("service", service);
  try {
    const [homes, orders, alerts] = await Promise.all([
      api("/api/v1/homes"), api("/api/v1/orders?" + query), api("/api/v1/alerts?" + alertQuery)]);
    fillSelect($("filter-home"), homes.homes);
    renderOrders(orders.orders);
    renderAlerts(alerts.alerts);
    showError("");
    $("last-update").textContent = "更新于 " + new Date().toLocaleTimeString("zh-CN", { hour12: false });
  } catch (error) {
    if (error.message !== "unauthorized") showError("连接服务器失败：" + error.message);
  }
}

async function changeStatus(id, status, eta) {
  const body = { status };
  if (eta && status === "dispatched") body.eta = eta;
  try {
    await api(`/api/v1/orders/${id}/status`, { method: "POST", body: JSON.stringify(body) });
  } catch (error) {
    showError("操作失败：" + error.message);
  }
  await refresh();
}

async function acknowledge(id) {
  try {
    await api(`/api/v1/alerts/${id}/ack`, { method: "POST", body: JSON.stringify({ by: "社区服务台" }) });
  } catch (error) {
    showError("操作失败：" + error.message);
  }
  await refresh();
}

function start() {
  show($("login"), false);
  show($("board"), true);
  refresh();
  if (timer === null) timer = setInterval(refresh, POLL_MS);
}

function logout(message) {
  token = "";
  localStorage.removeItem(TOKEN_KEY);
  if (timer !== null) clearInterval(timer);
  timer = null;
  show($("board"), false);
  show($("login"), true);
  showError(message || "");
}

function init() {
  fillSelect($("filter-service"), Object.keys(SERVICE_NAMES), SERVICE_NAMES);
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    localStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, "", location.pathname);
  }
  token = localStorage.getItem(TOKEN_KEY) || "";
  $("token-save").addEventListener("click", () => {
    token = $("token-input").value.trim();
    if (!token) return;
    localStorage.setItem(TOKEN_KEY, token);
    start();
  });
  $("token-input").addEventListener("keydown", (event) => { if (event.key === "Enter") $("token-save").click(); });
  $("logout").addEventListener("click", () => logout(""));
  for (const id of ["filter-home", "filter-service"]) $(id).addEventListener("change", refresh);
  if (token) start(); else logout("");
}

init();
