/*
 * clustermon dashboard: overview, cluster, firm and live alerts pages over
 * the daemon's JSON API (/api/v1/, proto/PROTOCOL.md section 9). Plain
 * JavaScript; the only library is ECharts, served by the daemon itself.
 *
 * Amounts arrive as exact decimal strings ("20580000000.000"): tables show
 * them exactly, digit for digit, and only the charts and the cards turn them
 * into 亿元 / billions for reading. Live alerts come as Server-Sent Events
 * (/api/v1/events); on every (re)connection the page fetches the firing
 * alerts afresh, so nothing between two streams is lost.
 */
'use strict';

const I18N = {
  zh: {
    title: '产业集群监测', nav_overview: '概览', nav_alerts: '告警', switch: 'English',
    footer: '数据来自 clustermond；金额为精确值（元），图表单位为亿元。',
    overview: '集群概览', year: '年份', through: '截至', month_n: (m) => m + '月',
    cluster: '集群', city: '城市', members: '成员企业', above_scale: '规上企业', reporting: '已报送',
    revenue: '营业收入（元）', profit: '利润总额（元）', ytd: '年累计', last_ytd: '上年同期',
    growth: '增速', target: '目标增速', gap: '距目标差额（元）', run_rate: '全年预计（元）',
    coverage: '报送覆盖', firing: '正在告警', none: '无', chains: '产业链', chain: '产业链',
    no_chain: '无产业链的其他成员', tiers: '梯队', tier: '梯队', designations: '称号', count: '企业数',
    drag: '拖累企业（收入同比减少最多）', change: '同比变化（元）', firms: '企业', firm: '企业',
    trend: '月度营业收入：今年、去年与目标线（亿元）', this_year: '今年', last_year: '去年',
    target_line: '目标线', alerts: '告警', live_alerts: '实时告警', severity: '级别', state: '状态',
    since: '开始', summary: '说明', rule: '规则', silence: '静默', silences: '静默规则',
    silence_for: '时长', reason: '原因', add: '添加', until: '至', readonly: '只读：仅管理员可添加静默',
    added: '已添加静默', events: '本页收到的告警变化', series: '月度数据（元）', month: '月份',
    profit_chart: '月度利润总额（亿元）', revenue_chart: '月度营业收入（亿元）',
    loading: '加载中…', failed: '加载失败', yi: '亿元', former: '已退出',
    leading: '领军企业', backbone: '骨干企业', potential: '潜力企业', member: '一般成员',
    firing_s: '告警中', flapping: '抖动', resolved: '已恢复', critical: '严重', warning: '警告', info: '提示',
  },
  en: {
    title: 'Industrial cluster monitor', nav_overview: 'Overview', nav_alerts: 'Alerts', switch: '中文',
    footer: 'Figures from clustermond; amounts exact (yuan), charts in 100 million yuan.',
    overview: 'Clusters', year: 'Year', through: 'Through', month_n: (m) => 'month ' + m,
    cluster: 'Cluster', city: 'City', members: 'Member firms', above_scale: 'Above scale', reporting: 'Reporting',
    revenue: 'Revenue (yuan)', profit: 'Profit (yuan)', ytd: 'Year to date', last_ytd: 'Same months last year',
    growth: 'Growth', target: 'Target', gap: 'Gap to target (yuan)', run_rate: 'Run-rate (yuan)',
    coverage: 'Coverage', firing: 'Firing', none: 'none', chains: 'Chains', chain: 'Chain',
    no_chain: 'Other members (no chain)', tiers: 'Tiers', tier: 'Tier', designations: 'Designations',
    count: 'Firms', drag: 'Drag firms (largest fall in revenue)', change: 'Change (yuan)',
    firms: 'Firms', firm: 'Firm', trend: 'Monthly revenue: this year, last year and the target line (100 m yuan)',
    this_year: 'This year', last_year: 'Last year', target_line: 'Target line', alerts: 'Alerts',
    live_alerts: 'Live alerts', severity: 'Severity', state: 'State', since: 'Since', summary: 'Summary',
    rule: 'Rule', silence: 'Silence', silences: 'Silences', silence_for: 'For', reason: 'Reason', add: 'Add',
    until: 'Until', readonly: 'Read-only: only admins add silences', added: 'Silence added',
    events: 'Alert changes received on this page', series: 'Monthly figures (yuan)', month: 'Month',
    profit_chart: 'Monthly profit (100 m yuan)', revenue_chart: 'Monthly revenue (100 m yuan)',
    loading: 'Loading…', failed: 'Could not load', yi: '100 m yuan', former: 'former member',
    leading: 'Leading', backbone: 'Backbone', potential: 'High-potential', member: 'Member',
    firing_s: 'firing', flapping: 'flapping', resolved: 'resolved', critical: 'critical', warning: 'warning', info: 'info',
  },
};

const state = {
  lang: localStorage.getItem('clustermon.lang') === 'en' ? 'en' : 'zh',
  me: { admin: false, user: null },
  tz: 'Asia/Shanghai',
  alerts: new Map(), // firing and flapping alerts by id, kept live by the event stream
  events: [], // transitions received on this page, newest first
  charts: [],
};

const t = (k, ...a) => { const v = I18N[state.lang][k]; return typeof v === 'function' ? v(...a) : (v ?? k); };
const $ = (sel, el = document) => el.querySelector(sel);

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

/* "20580000000.000" -> "20,580,000,000"; "-1234.560" -> "-1,234.56": exact, no floats. */
function fmtExact(s) {
  if (s === null || s === undefined) return '–';
  const str = String(s);
  const neg = str.startsWith('-');
  let [i, f = ''] = (neg ? str.slice(1) : str).split('.');
  f = f.replace(/0+$/, '');
  i = i.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return (neg ? '-' : '') + i + (f ? '.' + f : '');
}
/* exact decimal string -> number of 亿元 (1e8 yuan), for charts and cards */
const yi = (s) => (s === null || s === undefined ? null : Number(s) / 1e8);
const fmtYi = (s) => (s === null || s === undefined ? '–'
  : yi(s).toLocaleString(state.lang === 'zh' ? 'zh-CN' : 'en-US', { maximumFractionDigits: 2, minimumFractionDigits: 2 }) + ' ' + t('yi'));
const fmtPct = (p) => (p === null || p === undefined ? '–' : (p >= 0 ? '+' : '') + p.toFixed(2) + '%');
const fmtTime = (ms) => new Date(ms).toLocaleString(state.lang === 'zh' ? 'zh-CN' : 'en-GB', { timeZone: state.tz, hour12: false });
const tierName = (x) => t(x);
const signClass = (s) => (s && String(s).startsWith('-') ? 'neg' : 'pos');

async function api(path, opts) {
  const r = await fetch('/api/v1/' + path, Object.assign({ credentials: 'same-origin' }, opts));
  const body = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw Object.assign(new Error(body.error || r.statusText), { status: r.status });
  return body;
}

function applyStatic() {
  document.documentElement.lang = state.lang === 'zh' ? 'zh-CN' : 'en';
  document.title = t('title');
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $('#lang').textContent = t('switch');
  $('#who').textContent = state.me.user ? state.me.user + (state.me.admin ? ' (admin)' : '') : '';
}

function disposeCharts() {
  state.charts.forEach((c) => c.dispose());
  state.charts = [];
}

function chart(el, option) {
  const c = echarts.init(el, null, { locale: state.lang === 'zh' ? 'ZH' : 'EN', renderer: 'canvas' });
  c.setOption(Object.assign({ animation: false, tooltip: { trigger: 'axis' }, legend: { top: 0 },
    grid: { left: 60, right: 20, top: 40, bottom: 30 } }, option));
  state.charts.push(c);
  return c;
}

const months = () => Array.from({ length: 12 }, (_, i) => t('month_n', i + 1));

/* ---- alerts (shared by every page) -------------------------------------------- */

function alertRows(list, withSilence) {
  if (!list.length) return `<tr><td colspan="6" class="muted">${t('none')}</td></tr>`;
  return list.map((a) => `<tr data-alert="${esc(a.id)}">
    <td class="sev-${esc(a.severity)}">${esc(t(a.severity))}</td>
    <td>${esc(a.state === 'firing' ? t('firing_s') : t(a.state))}</td>
    <td>${esc(a.rule)}</td>
    <td>${a.firm ? `<a href="#/firm/${encodeURIComponent(a.firm)}">${esc(a.firm)}</a>` : `<a href="#/cluster/${encodeURIComponent(a.cluster)}">${esc(a.cluster)}</a>`}</td>
    <td>${esc(a.summary)}</td>
    <td>${esc(fmtTime(a.since_ms))}</td>
    ${withSilence ? `<td>${state.me.admin ? `<form class="silence" data-rule="${esc(a.rule)}" data-cluster="${esc(a.cluster)}" data-firm="${esc(a.firm ?? '')}">
        <select name="for"><option>1h</option><option>4h</option><option>1d</option><option>7d</option></select>
        <input type="text" name="reason" placeholder="${esc(t('reason'))}" required>
        <button type="submit" data-testid="silence-add">${esc(t('silence'))}</button></form>` : ''}</td>` : ''}
  </tr>`).join('');
}

function alertTable(filter, withSilence) {
  const list = [...state.alerts.values()].filter(filter).sort((a, b) => b.ts_ms - a.ts_ms);
  return `<div class="scroll"><table data-testid="alerts"><thead><tr><th>${t('severity')}</th><th>${t('state')}</th>
    <th>${t('rule')}</th><th>${t('firm')}</th><th>${t('summary')}</th><th>${t('since')}</th>${withSilence ? `<th>${t('silence')}</th>` : ''}</tr></thead>
    <tbody>${alertRows(list, withSilence)}</tbody></table></div>`;
}

/* Redraws every alert table on the page from state.alerts (after an event). */
let refreshAlerts = () => {};

function setAlerts(list) {
  state.alerts = new Map(list.map((a) => [a.id, a]));
}

function onAlertEvent(a) {
  if (a.state === 'resolved') state.alerts.delete(a.id);
  else state.alerts.set(a.id, a);
  state.events.unshift(a);
  state.events.length = Math.min(state.events.length, 50);
  refreshAlerts(a);
}

function connectEvents() {
  const es = new EventSource('/api/v1/events');
  es.addEventListener('open', async () => {
    $('#live').classList.add('on');
    try { setAlerts((await api('alerts')).alerts); refreshAlerts(null); } catch (e) { /* the page shows its own */ }
  });
  es.addEventListener('error', () => $('#live').classList.remove('on'));
  es.addEventListener('heartbeat', () => $('#live').classList.add('on'));
  es.addEventListener('alert', (ev) => onAlertEvent(JSON.parse(ev.data)));
}

/* ---- pages ---------------------------------------------------------------------- */

function yearBar(d, base) {
  return `<div class="toolbar"><label>${t('year')} <input id="year" type="number" value="${d.year}" min="2000" max="2199" style="width:6em"></label>
    <label>${t('through')} <select id="through">${Array.from({ length: 12 }, (_, i) => `<option value="${i + 1}" ${i + 1 === d.through ? 'selected' : ''}>${t('month_n', i + 1)}</option>`).join('')}</select></label></div>`;
}
function bindYearBar(base) {
  const go = () => { location.hash = `${base}?year=${$('#year').value}&through=${$('#through').value}`; };
  $('#year').addEventListener('change', go);
  $('#through').addEventListener('change', go);
}

async function pageOverview(q) {
  const d = await api('overview' + q);
  state.tz = d.timezone || state.tz;
  setAlerts(d.alerts);
  const rep = new Map(d.report.clusters.map((c) => [c.id, c]));
  const v = $('#view');
  v.innerHTML = `<h1>${t('overview')} · ${d.year}</h1>${yearBar(d)}
    <h2>${t('revenue')} · ${d.year}</h2>
    <div class="scroll"><table data-testid="report"><thead><tr><th>${t('cluster')}</th><th class="n">${t('members')}</th>
      <th class="n">${t('above_scale')}</th><th class="n">${t('reporting')}</th><th class="n">${t('revenue')}</th><th class="n">${t('profit')}</th></tr></thead><tbody>
      ${d.report.clusters.map((c) => `<tr><td><a href="#/cluster/${encodeURIComponent(c.id)}?year=${d.year}&through=${d.through}">${esc(c.title)}</a></td>
        <td class="n" data-testid="firms-${esc(c.id)}">${c.firms}</td><td class="n" data-testid="above-${esc(c.id)}">${c.above_scale}</td>
        <td class="n">${c.reporting}</td><td class="n" data-testid="revenue-${esc(c.id)}">${fmtExact(c.revenue)}</td>
        <td class="n" data-testid="profit-${esc(c.id)}">${fmtExact(c.profit)}</td></tr>`).join('')}
    </tbody></table></div>
    ${(d.report.cities || []).length ? `<h2>${t('city')} · ${d.year}</h2>
    <div class="scroll"><table data-testid="cities"><thead><tr><th>${t('city')}</th><th class="n">${t('members')}</th>
      <th class="n">${t('above_scale')}</th><th class="n">${t('reporting')}</th><th class="n">${t('revenue')}</th><th class="n">${t('profit')}</th></tr></thead><tbody>
      ${d.report.cities.map((c) => `<tr><td>${esc(c.id)}</td><td class="n">${c.firms}</td><td class="n">${c.above_scale}</td>
        <td class="n">${c.reporting}</td><td class="n" data-testid="city-revenue-${esc(c.id)}">${fmtExact(c.revenue)}</td>
        <td class="n">${fmtExact(c.profit)}</td></tr>`).join('')}
    </tbody></table></div>` : ''}
    <h2>${t('ytd')} · ${d.year}-01..${String(d.through).padStart(2, '0')}</h2>
    <div class="scroll"><table data-testid="targets"><thead><tr><th>${t('cluster')}</th><th class="n">${t('ytd')}</th><th class="n">${t('last_ytd')}</th>
      <th class="n">${t('growth')}</th><th class="n">${t('target')}</th><th class="n">${t('gap')}</th><th class="n">${t('run_rate')}</th>
      <th class="n">${t('coverage')}</th><th class="n">${t('firing')}</th></tr></thead><tbody>
      ${d.clusters.map((c) => { const s = c.summary; const firing = [...state.alerts.values()].filter((a) => a.cluster === c.id).length;
        return `<tr><td><a href="#/cluster/${encodeURIComponent(c.id)}?year=${d.year}&through=${d.through}">${esc(c.title)}</a></td>
        <td class="n">${fmtExact(s.ytd)}</td><td class="n">${fmtExact(s.last_year)}</td><td class="n">${fmtPct(s.growth_pct)}</td>
        <td class="n">${s.target ? fmtPct(s.target.target_pct) : '–'}</td><td class="n ${s.gap && !s.gap.startsWith('-') ? 'neg' : ''}">${fmtExact(s.gap)}</td>
        <td class="n">${fmtExact(s.run_rate)}</td><td class="n">${s.reporting ?? 0} / ${s.firms ?? 0}</td><td class="n" data-testid="firing-${esc(c.id)}">${firing}</td></tr>`; }).join('')}
    </tbody></table></div>
    <div class="cards" style="margin-top:1em">${d.clusters.map((c) => `<div class="card"><div class="k">${esc(c.title)} · ${t('ytd')}</div>
      <div class="v">${fmtYi(c.summary.ytd)}</div><div class="muted">${t('growth')} ${fmtPct(c.summary.growth_pct)}</div></div>`).join('')}</div>
    <h2>${t('live_alerts')}</h2><div id="alerts-box"></div>`;
  bindYearBar('#/');
  refreshAlerts = () => {
    $('#alerts-box').innerHTML = alertTable(() => true, false);
    d.clusters.forEach((c) => { const el = $(`[data-testid="firing-${c.id}"]`); if (el) el.textContent = [...state.alerts.values()].filter((a) => a.cluster === c.id).length; });
  };
  refreshAlerts();
}

function rowsTable(rows, kind, metric) {
  const list = rows.filter((r) => r.kind === kind);
  return `<div class="scroll"><table data-testid="${kind}s"><thead><tr><th>${kind === 'tier' ? t('tier') : t('chain')}</th><th class="n">${t('members')}</th>
    <th class="n">${t('above_scale')}</th><th class="n">${t('ytd')}</th><th class="n">${t('last_ytd')}</th><th class="n">${t('growth')}</th></tr></thead><tbody>
    ${list.map((r) => { const m = r.metrics[metric] || {};
      const name = kind === 'tier' ? tierName(r.id) : (r.id || t('no_chain'));
      return `<tr><td>${esc(name)}</td><td class="n">${r.firms}</td><td class="n">${r.above_scale}</td><td class="n">${fmtExact(m.ytd)}</td>
      <td class="n">${fmtExact(m.last_year)}</td><td class="n">${fmtPct(m.growth_pct)}</td></tr>`; }).join('')}</tbody></table></div>`;
}

async function pageCluster(id, q) {
  const d = await api('cluster/' + encodeURIComponent(id) + q);
  const cl = d.cluster;
  const metric = cl.revenue_metric;
  const s = d.summary;
  d.alerts.forEach((a) => state.alerts.set(a.id, a));
  const desig = new Map();
  d.firms.forEach((f) => f.designations.split(';').filter(Boolean).forEach((x) => desig.set(x, (desig.get(x) || 0) + 1)));
  const drag = d.firms.filter((f) => f.change && f.change.startsWith('-'))
    .sort((a, b) => Number(a.change) - Number(b.change)).slice(0, 10);
  const v = $('#view');
  v.innerHTML = `<h1>${esc(cl.title)} <span class="muted">${esc(cl.id)}</span></h1>${yearBar(d)}
    <div class="cards">
      <div class="card"><div class="k">${t('ytd')}</div><div class="v">${fmtYi(s.ytd)}</div><div class="muted">${t('last_ytd')} ${fmtYi(s.last_year)}</div></div>
      <div class="card"><div class="k">${t('growth')}</div><div class="v">${fmtPct(s.growth_pct)}</div><div class="muted">${t('target')} ${s.target ? fmtPct(s.target.target_pct) : '–'}</div></div>
      <div class="card"><div class="k">${t('gap')}</div><div class="v">${fmtYi(s.gap)}</div><div class="muted">${s.target ? esc(s.target.measures || '') : ''}</div></div>
      <div class="card"><div class="k">${t('run_rate')}</div><div class="v">${fmtYi(s.run_rate)}</div></div>
      <div class="card"><div class="k">${t('coverage')}</div><div class="v">${s.reporting ?? 0} / ${s.firms ?? 0}</div><div class="muted">${s.target ? esc(s.target.coverage || '') : ''}</div></div>
    </div>
    <h2>${t('trend')}</h2><div id="trend" class="chart" data-testid="trend"></div>
    <h2>${t('chains')}</h2>${rowsTable(cl.rows, 'chain', metric)}
    <h2>${t('tiers')}</h2>${rowsTable(cl.rows, 'tier', metric)}
    <h2>${t('designations')}</h2><div class="scroll"><table data-testid="designations"><thead><tr><th>${t('designations')}</th><th class="n">${t('count')}</th></tr></thead><tbody>
      ${[...desig.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `<tr><td>${esc(k)}</td><td class="n" data-testid="designation-${esc(k)}">${n}</td></tr>`).join('') || `<tr><td colspan="2" class="muted">${t('none')}</td></tr>`}</tbody></table></div>
    <h2>${t('drag')}</h2><div class="scroll"><table data-testid="drag"><thead><tr><th>${t('firm')}</th><th>${t('tier')}</th><th class="n">${t('ytd')}</th><th class="n">${t('last_ytd')}</th><th class="n">${t('change')}</th></tr></thead><tbody>
      ${drag.map((f) => `<tr><td><a href="#/firm/${encodeURIComponent(f.id)}?year=${d.year}">${esc(f.name)}</a></td><td>${esc(tierName(f.tier))}</td>
        <td class="n">${fmtExact(f.ytd)}</td><td class="n">${fmtExact(f.last_year)}</td><td class="n neg">${fmtExact(f.change)}</td></tr>`).join('') || `<tr><td colspan="5" class="muted">${t('none')}</td></tr>`}</tbody></table></div>
    <h2>${t('alerts')}</h2><div id="alerts-box"></div>
    <h2>${t('firms')} (${d.firms.length})</h2><div class="scroll"><table><thead><tr><th>${t('firm')}</th><th>${t('chain')}</th><th>${t('tier')}</th><th>${t('designations')}</th>
      <th class="n">${t('ytd')}</th><th class="n">${t('last_ytd')}</th><th class="n">${t('change')}</th></tr></thead><tbody>
      ${d.firms.map((f) => `<tr><td><a href="#/firm/${encodeURIComponent(f.id)}?year=${d.year}">${esc(f.id)}</a> ${esc(f.name)}${f.former ? ` <span class="muted">(${t('former')})</span>` : ''}</td>
        <td>${esc(f.chain || '')}</td><td>${esc(tierName(f.tier))}</td><td>${esc(f.designations)}</td><td class="n">${fmtExact(f.ytd)}</td>
        <td class="n">${fmtExact(f.last_year)}</td><td class="n ${signClass(f.change)}">${fmtExact(f.change)}</td></tr>`).join('')}</tbody></table></div>`;
  bindYearBar('#/cluster/' + encodeURIComponent(id));
  const ser = d.series[metric];
  const target = s.target ? s.target.target_pct : null;
  chart($('#trend'), {
    xAxis: { type: 'category', data: months() },
    yAxis: { type: 'value', name: t('yi') },
    series: [
      { name: t('this_year') + ' ' + d.year, type: 'bar', data: ser.this_year.values.map(yi) },
      { name: t('last_year') + ' ' + (d.year - 1), type: 'line', data: ser.last_year.values.map(yi) },
      ...(target === null ? [] : [{ name: t('target_line') + ' ' + fmtPct(target), type: 'line', lineStyle: { type: 'dashed' }, symbol: 'none',
        data: ser.last_year.values.map((x) => (x === null ? null : yi(x) * (1 + target / 100))) }]),
    ],
  });
  refreshAlerts = () => { $('#alerts-box').innerHTML = alertTable((a) => a.cluster === id, false); };
  refreshAlerts();
}

async function pageFirm(id, q) {
  const d = await api('firm/' + encodeURIComponent(id) + q);
  const f = d.firm;
  d.alerts.forEach((a) => state.alerts.set(a.id, a));
  const metrics = Object.keys(d.series);
  const v = $('#view');
  v.innerHTML = `<h1>${esc(f.name)} <span class="muted">${esc(f.id)}</span></h1>${yearBar(d)}
    <div class="cards">
      <div class="card"><div class="k">${t('cluster')}</div><div class="v"><a href="#/cluster/${encodeURIComponent(f.cluster)}?year=${d.year}">${esc(f.cluster)}</a></div></div>
      <div class="card"><div class="k">${t('chain')}</div><div class="v">${esc(f.chain || t('none'))}</div></div>
      <div class="card"><div class="k">${t('tier')}</div><div class="v">${esc(tierName(f.tier))}</div></div>
      <div class="card"><div class="k">${t('designations')}</div><div class="v" style="font-size:1em">${esc(f.designations || t('none'))}</div></div>
    </div>
    ${metrics.map((m) => `<h2>${m === 'profit' ? t('profit_chart') : t('revenue_chart')}</h2><div id="chart-${esc(m)}" class="chart"></div>`).join('')}
    <h2>${t('series')}</h2><div class="scroll"><table data-testid="series"><thead><tr><th>${t('month')}</th>
      ${metrics.map((m) => `<th class="n">${esc(m)} ${d.year}</th><th class="n">${esc(m)} ${d.year - 1}</th>`).join('')}</tr></thead><tbody>
      ${months().map((name, i) => `<tr><td>${esc(name)}</td>${metrics.map((m) => `<td class="n">${fmtExact(d.series[m].this_year.values[i])}</td><td class="n">${fmtExact(d.series[m].last_year.values[i])}</td>`).join('')}</tr>`).join('')}
    </tbody></table></div>
    <h2>${t('alerts')}</h2><div id="alerts-box"></div>`;
  bindYearBar('#/firm/' + encodeURIComponent(id));
  metrics.forEach((m) => chart($('#chart-' + m), {
    xAxis: { type: 'category', data: months() }, yAxis: { type: 'value', name: t('yi') },
    series: [{ name: t('this_year') + ' ' + d.year, type: 'bar', data: d.series[m].this_year.values.map(yi) },
      { name: t('last_year') + ' ' + (d.year - 1), type: 'line', data: d.series[m].last_year.values.map(yi) }],
  }));
  refreshAlerts = () => { $('#alerts-box').innerHTML = alertTable((a) => a.firm === id, false); };
  refreshAlerts();
}

async function pageAlerts() {
  const d = await api('alerts');
  setAlerts(d.alerts);
  const v = $('#view');
  const draw = (changed) => {
    v.innerHTML = `<h1>${t('live_alerts')}</h1>
      ${state.me.admin ? '' : `<p class="muted" data-testid="readonly">${t('readonly')}</p>`}
      <div id="alerts-box">${alertTable(() => true, true)}</div>
      <p id="msg" role="status"></p>
      <h2>${t('events')}</h2><div class="scroll"><table data-testid="events"><thead><tr><th>${t('since')}</th><th>${t('state')}</th><th>${t('severity')}</th><th>${t('summary')}</th></tr></thead><tbody>
        ${state.events.map((a) => `<tr><td>${esc(fmtTime(a.ts_ms))}</td><td>${esc(t(a.state === 'firing' ? 'firing_s' : a.state))}</td><td class="sev-${esc(a.severity)}">${esc(t(a.severity))}</td><td>${esc(a.summary)}</td></tr>`).join('') || `<tr><td colspan="4" class="muted">${t('none')}</td></tr>`}</tbody></table></div>
      <h2>${t('silences')}</h2><div class="scroll"><table data-testid="silences"><thead><tr><th>#</th><th>${t('rule')}</th><th>${t('cluster')}</th><th>${t('firm')}</th><th>${t('until')}</th><th>${t('reason')}</th></tr></thead><tbody>
        ${d.silences.map((s) => `<tr><td>${s.id}</td><td>${esc(s.rule)}</td><td>${esc(s.cluster)}</td><td>${esc(s.firm ?? '')}</td><td>${esc(fmtTime(s.until_ms))}</td><td>${esc(s.reason)}</td></tr>`).join('') || `<tr><td colspan="6" class="muted">${t('none')}</td></tr>`}</tbody></table></div>`;
    if (changed) { const row = v.querySelector(`[data-alert="${CSS.escape(changed.id)}"]`); if (row) row.classList.add('flash'); }
    v.querySelectorAll('form.silence').forEach((form) => form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = { rule: form.dataset.rule, cluster: form.dataset.cluster, for: form.elements.for.value, reason: form.elements.reason.value };
      if (form.dataset.firm) body.firm = form.dataset.firm;
      try {
        const r = await api('cmd/silence_add', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
        d.silences = (await api('alerts')).silences;
        draw(null);
        $('#msg').textContent = `${t('added')} #${r.id}`;
      } catch (e) { $('#msg').textContent = e.message; }
    }));
  };
  refreshAlerts = draw;
  draw(null);
}

async function render() {
  disposeCharts();
  refreshAlerts = () => {};
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  const q = query ? '?' + query : '';
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const v = $('#view');
  v.innerHTML = `<p class="muted">${t('loading')}</p>`;
  try {
    if (parts[0] === 'cluster' && parts[1]) await pageCluster(parts[1], q);
    else if (parts[0] === 'firm' && parts[1]) await pageFirm(parts[1], q);
    else if (parts[0] === 'alerts') await pageAlerts();
    else await pageOverview(q);
  } catch (e) {
    v.innerHTML = `<p class="error">${t('failed')}: ${esc(e.message)}</p>`;
  }
}

async function main() {
  $('#lang').addEventListener('click', () => {
    state.lang = state.lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('clustermon.lang', state.lang);
    applyStatic();
    render();
  });
  window.addEventListener('resize', () => state.charts.forEach((c) => c.resize()));
  window.addEventListener('hashchange', render);
  try { state.me = await api('me'); } catch (e) { /* shown by the page's own request */ }
  applyStatic();
  await render();
  connectEvents();
}

main();
