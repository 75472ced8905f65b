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
    drag: '拖累企业（对目标差距贡献最大）', change: '同比变化（元）', gap_share: '占目标差距（百分点）', contribution: '增长贡献（百分点）', base: '上年同期（元）', yoy: '同比', firms: '企业', firm: '企业',
    trend: '月度营业收入：今年、去年与目标线（亿元）', this_year: '今年', last_year: '去年',
    target_line: '目标线', alerts: '告警', live_alerts: '实时告警', severity: '级别', state: '状态',
    since: '开始', summary: '说明', rule: '规则', silence: '静默', silences: '静默规则',
    silence_for: '时长', reason: '原因', add: '添加', until: '至', readonly: '只读：仅管理员可添加静默',
    added: '已添加静默', events: '本页收到的告警变化', series: '月度数据（元）', month: '月份',
    profit_chart: '月度利润总额（亿元）', revenue_chart: '月度营业收入（亿元）',
    loading: '加载中…', failed: '加载失败', yi: '亿元', former: '已退出',
    leading: '领军企业', backbone: '骨干企业', potential: '潜力企业', member: '一般成员',
    nav_history: '告警历史', history: '告警历史', kind: '类型', who: '操作人', note: '说明', ack: '确认',
    acked: '已确认', ack_note: '跟进说明（如：5月设备检修）', ack_done: '已确认告警', filter: '筛选', all: '全部',
    alert_id: '告警', matched: '条匹配', k_alert: '告警变化', k_ack: '确认', k_silence_add: '添加静默', k_silence_rm: '解除静默',
    readonly_ack: '只读：仅管理员可确认告警或添加静默',
    metric: '指标', nav_upload: '上报数据', upload: '上报月度数据', upload_file: '选择文件（CSV、xlsx 或 xls，GBK 或 UTF-8）',
    check: '检查', confirm: '确认提交', checking: '检查中…', problems: '问题', line: '行', no_problems: '没有问题，可以提交',
    rows: '行数', rows_ok: '可提交的行', sum: '合计', upload_seq: '上报序号', applied: '已提交', already: '这份文件已经提交过（没有重复计入）',
    will_skip: '有问题的行不会提交；改正后重新检查', upload_for: '可上报的企业', any_firm: '任何企业（管理员）', accepted: '已计入',
    upload_hint: '先检查：每个问题都标出行号，什么都不会计入；确认提交后才计入。同一份文件提交两次只计入一次。',
    or_form: '或在表单中填写月度数据', period: '期间（年-月）', value: '数值', add_row: '添加一行', remove_row: '删除', row: '表单行',
    check_form: '检查表单',
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
    count: 'Firms', drag: 'Drag firms (largest share of the gap to the target)', change: 'Change (yuan)', gap_share: 'Share of the gap (pp)', contribution: 'Contribution (pp)', base: 'Same months last year (yuan)', yoy: 'Year on year',
    firms: 'Firms', firm: 'Firm', trend: 'Monthly revenue: this year, last year and the target line (100 m yuan)',
    this_year: 'This year', last_year: 'Last year', target_line: 'Target line', alerts: 'Alerts',
    live_alerts: 'Live alerts', severity: 'Severity', state: 'State', since: 'Since', summary: 'Summary',
    rule: 'Rule', silence: 'Silence', silences: 'Silences', silence_for: 'For', reason: 'Reason', add: 'Add',
    until: 'Until', readonly: 'Read-only: only admins add silences', added: 'Silence added',
    events: 'Alert changes received on this page', series: 'Monthly figures (yuan)', month: 'Month',
    profit_chart: 'Monthly profit (100 m yuan)', revenue_chart: 'Monthly revenue (100 m yuan)',
    loading: 'Loading…', failed: 'Could not load', yi: '100 m yuan', former: 'former member',
    leading: 'Leading', backbone: 'Backbone', potential: 'High-potential', member: 'Member',
    nav_history: 'History', history: 'Alert history', kind: 'Kind', who: 'Who', note: 'Note', ack: 'Acknowledge',
    acked: 'Acknowledged', ack_note: 'Follow-up note (e.g. plant maintenance in May)', ack_done: 'Alert acknowledged', filter: 'Filter', all: 'all',
    alert_id: 'Alert', matched: 'matched', k_alert: 'alert', k_ack: 'acknowledged', k_silence_add: 'silence added', k_silence_rm: 'silence removed',
    readonly_ack: 'Read-only: only admins acknowledge alerts or add silences',
    metric: 'Metric', nav_upload: 'Upload', upload: 'Upload monthly figures', upload_file: 'Choose a file (CSV, xlsx or xls; GBK or UTF-8)',
    check: 'Check', confirm: 'Confirm', checking: 'Checking…', problems: 'Problems', line: 'Line', no_problems: 'No problems: ready to confirm',
    rows: 'Rows', rows_ok: 'Rows to apply', sum: 'Sum', upload_seq: 'Upload no.', applied: 'Applied', already: 'This file was applied before (not counted twice)',
    will_skip: 'Rows with problems are not applied; fix them and check again', upload_for: 'May upload for', any_firm: 'any firm (admin)', accepted: 'Applied rows',
    upload_hint: 'Check first: every problem is named by line and nothing is applied; only Confirm applies the file. The same file confirmed twice counts once.',
    or_form: 'Or type the month\'s figures', period: 'Period (YYYY-MM)', value: 'Value', add_row: 'Add a row', remove_row: 'Remove', row: 'Form row',
    check_form: 'Check the form',
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

/* A firm's login: it uploads its figures and reads nothing else. */
const isFirmLogin = () => Boolean(state.me.firms) && !state.me.admin;
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
const fmtPP = (p) => (p === null || p === undefined ? '–' : (p >= 0 ? '+' : '') + p.toFixed(2));
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
  $('#who').textContent = state.me.user ? state.me.user + (state.me.admin ? ' (admin)' : isFirmLogin() ? ` (${state.me.firms})` : '') : '';
  document.querySelectorAll('nav a[data-reads]').forEach((a) => { a.hidden = isFirmLogin(); });
  $('#live').hidden = isFirmLogin(); // a firm login follows no alerts
  document.querySelectorAll('nav a[data-uploads]').forEach((a) => { a.hidden = !isFirmLogin() && !state.me.admin; });
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
  if (!list.length) return `<tr><td colspan="${withSilence ? 8 : 6}" class="muted">${t('none')}</td></tr>`;
  return list.map((a) => `<tr data-alert="${esc(a.id)}">
    <td class="sev-${esc(a.severity)}">${esc(t(a.severity))}</td>
    <td>${esc(a.state === 'firing' ? t('firing_s') : t(a.state))}</td>
    <td>${esc(a.rule)}</td>
    <td>${a.firm ? `<a href="#/firm/${encodeURIComponent(a.firm)}">${esc(a.firm)}</a>` : `<a href="#/cluster/${encodeURIComponent(a.cluster)}">${esc(a.cluster)}</a>`}</td>
    <td class="summary">${esc(a.summary)}${a.ack ? `<div class="ack" data-testid="ack">${esc(t('acked'))} · ${esc(a.ack.who)} · ${esc(fmtTime(a.ack.at_ms))}: ${esc(a.ack.note)}</div>` : ''}</td>
    <td>${esc(fmtTime(a.since_ms))}</td>
    ${withSilence ? `<td>${state.me.admin && !a.ack ? `<form class="ack" data-id="${esc(a.id)}">
        <input type="text" name="note" placeholder="${esc(t('ack_note'))}" required>
        <button type="submit" data-testid="ack-add">${esc(t('ack'))}</button></form>` : ''}</td>` : ''}
    ${withSilence ? `<td>${state.me.admin ? `<form class="silence" data-rule="${esc(a.rule)}" data-cluster="${esc(a.cluster)}" data-firm="${esc(a.firm ?? '')}">
        <select name="for"><option>1h</option><option>4h</option><option>1d</option><option>7d</option></select>
        <input type="text" name="reason" placeholder="${esc(t('reason'))}" required>
        <button type="submit" data-testid="silence-add">${esc(t('silence'))}</button></form>` : ''}</td>` : ''}
  </tr>`).join('');
}

function alertTable(filter, withSilence) {
  const list = [...state.alerts.values()].filter(filter).sort((a, b) => b.ts_ms - a.ts_ms);
  return `<div class="scroll"><table data-testid="alerts"><thead><tr><th>${t('severity')}</th><th>${t('state')}</th>
    <th>${t('rule')}</th><th>${t('firm')}</th><th>${t('summary')}</th><th>${t('since')}</th>${withSilence ? `<th>${t('ack')}</th><th>${t('silence')}</th>` : ''}</tr></thead>
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

/* A "series" command reply (with yoy) as an exact table: month, this year,
 * last year, reporting / members, year on year. */
function seriesTable(ser, testid) {
  return `<div class="scroll"><table data-testid="${testid}"><thead><tr><th>${t('month')}</th><th class="n">${t('this_year')}</th><th class="n">${t('last_year')}</th>
    <th class="n">${t('coverage')}</th><th class="n">${t('yoy')}</th></tr></thead><tbody>
    ${ser.points.map((p) => `<tr data-period="${esc(p.period)}"><td>${esc(p.period)}</td><td class="n" data-testid="value">${fmtExact(p.value)}</td>
      <td class="n" data-testid="last-year">${fmtExact(p.last_year)}</td><td class="n">${p.reporting} / ${p.members}</td><td class="n">${fmtPct(p.yoy_pct)}</td></tr>`).join('')}
    <tr class="sum"><td>Σ</td><td class="n" data-testid="sum">${fmtExact(ser.sum)}</td><td></td><td></td><td></td></tr></tbody></table></div>`;
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
  /* the ranking command's figures: every firm's range against last year's,
   * largest share of the gap to the target first */
  const ranked = new Map(d.ranking.firms.map((f) => [f.id, f]));
  const drag = d.ranking.firms.filter((f) => f.gap_pp !== null && f.gap_pp > 0).slice(0, 10);
  const ser = d.series[metric];
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
    ${seriesTable(ser, 'trend-table')}
    <h2>${t('chains')}</h2>${rowsTable(cl.rows, 'chain', metric)}
    <h2>${t('tiers')}</h2>${rowsTable(cl.rows, 'tier', metric)}
    <h2>${t('designations')}</h2><div class="scroll"><table data-testid="designations"><thead><tr><th>${t('designations')}</th><th class="n">${t('count')}</th></tr></thead><tbody>
      ${[...desig.entries()].sort((a, b) => b[1] - a[1]).map(([k, n]) => `<tr><td>${esc(k)}</td><td class="n" data-testid="designation-${esc(k)}">${n}</td></tr>`).join('') || `<tr><td colspan="2" class="muted">${t('none')}</td></tr>`}</tbody></table></div>
    <h2>${t('drag')} · ${esc(d.ranking.range)}</h2><p class="muted">${t('growth')} ${fmtPct(d.ranking.growth_pct)} · ${t('target')} ${fmtPct(d.ranking.target_pct)} · ${t('gap')} ${d.ranking.gap_pp === null ? '–' : d.ranking.gap_pp.toFixed(2)}</p>
    <div class="scroll"><table data-testid="drag"><thead><tr><th>${t('firm')}</th><th>${t('tier')}</th><th class="n">${t('ytd')}</th><th class="n">${t('base')}</th><th class="n">${t('growth')}</th><th class="n">${t('contribution')}</th><th class="n">${t('gap_share')}</th></tr></thead><tbody>
      ${drag.map((f) => `<tr data-firm="${esc(f.id)}"><td><a href="#/firm/${encodeURIComponent(f.id)}?year=${d.year}">${esc(f.id)}</a> ${esc(f.name)}</td><td>${esc(tierName(f.tier))}</td>
        <td class="n" data-testid="drag-value">${fmtExact(f.value)}</td><td class="n" data-testid="drag-base">${fmtExact(f.base)}</td><td class="n ${signClass(f.growth_pct)}">${fmtPct(f.growth_pct)}</td>
        <td class="n">${fmtPP(f.contribution_pp)}</td><td class="n neg" data-testid="drag-gap">${fmtPP(f.gap_pp)}</td></tr>`).join('') || `<tr><td colspan="7" class="muted">${t('none')}</td></tr>`}</tbody></table></div>
    <h2>${t('alerts')}</h2><div id="alerts-box"></div>
    <h2>${t('firms')} (${d.firms.length})</h2><div class="scroll"><table><thead><tr><th>${t('firm')}</th><th>${t('chain')}</th><th>${t('tier')}</th><th>${t('designations')}</th>
      <th class="n">${t('ytd')}</th><th class="n">${t('last_ytd')}</th><th class="n">${t('growth')}</th></tr></thead><tbody>
      ${d.firms.map((f) => `<tr><td><a href="#/firm/${encodeURIComponent(f.id)}?year=${d.year}">${esc(f.id)}</a> ${esc(f.name)}${f.former ? ` <span class="muted">(${t('former')})</span>` : ''}</td>
        <td>${esc(f.chain || '')}</td><td>${esc(tierName(f.tier))}</td><td>${esc(f.designations)}</td><td class="n">${fmtExact(ranked.get(f.id)?.value)}</td>
        <td class="n">${fmtExact(ranked.get(f.id)?.base)}</td><td class="n ${signClass(ranked.get(f.id)?.growth_pct)}">${fmtPct(ranked.get(f.id)?.growth_pct)}</td></tr>`).join('')}</tbody></table></div>`;
  bindYearBar('#/cluster/' + encodeURIComponent(id));
  const target = s.target ? s.target.target_pct : null;
  chart($('#trend'), {
    xAxis: { type: 'category', data: months() },
    yAxis: { type: 'value', name: t('yi') },
    series: [
      { name: t('this_year') + ' ' + d.year, type: 'bar', data: ser.points.map((p) => yi(p.value)) },
      { name: t('last_year') + ' ' + (d.year - 1), type: 'line', data: ser.points.map((p) => yi(p.last_year)) },
      ...(target === null ? [] : [{ name: t('target_line') + ' ' + fmtPct(target), type: 'line', lineStyle: { type: 'dashed' }, symbol: 'none',
        data: ser.points.map((p) => (p.last_year === null ? null : yi(p.last_year) * (1 + target / 100))) }]),
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
      ${months().map((name, i) => `<tr><td>${esc(name)}</td>${metrics.map((m) => `<td class="n">${fmtExact(d.series[m].points[i]?.value)}</td><td class="n">${fmtExact(d.series[m].points[i]?.last_year)}</td>`).join('')}</tr>`).join('')}
    </tbody></table></div>
    <h2>${t('alerts')}</h2><div id="alerts-box"></div>`;
  bindYearBar('#/firm/' + encodeURIComponent(id));
  metrics.forEach((m) => chart($('#chart-' + m), {
    xAxis: { type: 'category', data: months() }, yAxis: { type: 'value', name: t('yi') },
    series: [{ name: t('this_year') + ' ' + d.year, type: 'bar', data: d.series[m].points.map((p) => yi(p.value)) },
      { name: t('last_year') + ' ' + (d.year - 1), type: 'line', data: d.series[m].points.map((p) => yi(p.last_year)) }],
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
      ${state.me.admin ? '' : `<p class="muted" data-testid="readonly">${t('readonly_ack')}</p>`}
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
    v.querySelectorAll('form.ack').forEach((form) => form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        await api('cmd/ack', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ id: form.dataset.id, note: form.elements.note.value }) });
        const fresh = await api('alerts');
        setAlerts(fresh.alerts);
        d.silences = fresh.silences;
        draw(null);
        $('#msg').textContent = `${t('ack_done')} ${form.dataset.id}`;
      } catch (e) { $('#msg').textContent = e.message; }
    }));
  };
  refreshAlerts = draw;
  draw(null);
}

/* A firm's upload (daemon/webupload.h): check the file (a dry run, every
 * problem by line), then confirm it as the seq the check handed out, so a
 * double click or a retried POST applies it once. */
async function pageUpload() {
  const st = await api('upload/state');
  const v = $('#view');
  v.innerHTML = `<h1>${t('upload')}</h1>
    <p class="muted">${t('upload_hint')}</p>
    <p>${t('upload_for')}: <span data-testid="upload-firms">${st.any_firm ? t('any_firm') : st.firms.map((f) => `${esc(f.id)} ${esc(f.name)}`).join('；')}</span></p>
    <form id="upform" class="toolbar"><input type="file" name="file" data-testid="upload-file" accept=".csv,.txt,.xlsx,.xls" required>
      <button type="submit" data-testid="upload-check">${t('check')}</button></form>
    <h2>${t('or_form')}</h2>
    <form id="figform"><div class="scroll"><table data-testid="form-rows"><thead><tr><th class="n">#</th><th>${t('firm')}</th><th>${t('metric')}</th>
      <th>${t('period')}</th><th>${t('value')}</th><th></th></tr></thead><tbody></tbody></table></div>
      <p class="toolbar"><button type="button" id="addrow" data-testid="form-add">${t('add_row')}</button>
      <button type="submit" data-testid="form-check">${t('check_form')}</button></p></form>
    <div id="upresult" data-testid="upload-result"></div>`;
  let pending = null; // {name, bytes, seq, form} of the last check
  const post = (what, name, bytes, seq) => fetch(`/api/v1/upload/${what}?name=${encodeURIComponent(name)}${seq ? '&seq=' + seq : ''}`,
    { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: bytes })
    .then(async (r) => { const b = await r.json().catch(() => ({ error: r.statusText })); if (!r.ok && !b.problems) throw new Error(b.error || r.statusText); return b; });
  const sums = (d) => Object.entries(d.sums || {}).map(([m, x]) => `<tr><td>${esc(m)}</td><td class="n">${x.rows}</td><td class="n" data-testid="sum-${esc(m)}">${fmtExact(x.sum)}</td></tr>`).join('');
  /* the form's rows go as a CSV whose line N is form row N-1 (line 1 is
   * the header): its problems are shown by row, without the file's name */
  const problems = (d) => (d.problems || []).map((p) => (d.form
    ? `<tr data-line="${p.line}" data-row="${p.line - 1}"><td class="n">${t('row')} ${p.line - 1}</td><td>${esc(p.status)}</td><td class="summary">${esc(String(p.reason).replace(/^form\.csv:\d+: /, ''))}</td></tr>`
    : `<tr data-line="${p.line}"><td class="n">${p.line || ''}</td><td>${esc(p.status)}</td><td class="summary">${esc(p.reason)}</td></tr>`)).join('');
  const show = (d, applied) => {
    $('#upresult').innerHTML = `${d.error ? `<p class="error">${esc(d.error)}</p>` : ''}
      <p>${esc(d.file || '')} · ${t('rows')} ${d.rows ?? ''} · ${t('upload_seq')} <span data-testid="upload-seq">${d.seq ?? ''}</span></p>
      ${applied ? `<p class="ok" data-testid="upload-applied">${d.already_applied ? t('already') : `${t('applied')}: ${t('accepted')} ${d.accepted}`}</p>` : ''}
      ${(d.problems || []).length ? `<h2>${t('problems')} (${d.problems.length})</h2><p class="muted">${t('will_skip')}</p>
        <div class="scroll"><table data-testid="upload-problems"><thead><tr><th class="n">${d.form ? t('row') : t('line')}</th><th>${t('state')}</th><th>${t('reason')}</th></tr></thead><tbody>${problems(d)}</tbody></table></div>`
        : (applied || d.error ? '' : `<p class="ok" data-testid="upload-clean">${t('no_problems')}</p>`)}
      ${d.sums && Object.keys(d.sums).length ? `<h2>${t('rows_ok')}</h2><div class="scroll"><table data-testid="upload-sums"><thead><tr><th>${t('metric')}</th><th class="n">${t('rows')}</th><th class="n">${t('sum')}</th></tr></thead><tbody>${sums(d)}</tbody></table></div>` : ''}
      ${!applied && pending ? `<p><button type="button" id="confirm" data-testid="upload-confirm">${t('confirm')}</button></p>` : ''}`;
    const btn = $('#confirm');
    if (btn) btn.addEventListener('click', confirm);
    document.querySelectorAll('#figform tbody tr').forEach((tr, i) => {
      tr.classList.toggle('bad', Boolean(d.form && (d.problems || []).some((p) => p.line - 1 === i + 1)));
    });
  };
  async function confirm() {
    /* every click sends the seq of the check: a second one (a double
     * click, a retry) is a resend the daemon answers without applying */
    const p = pending;
    try { show(Object.assign(await post('apply', p.name, p.bytes, p.seq), { form: p.form }), true); } catch (e) { show({ error: e.message }, true); }
  }
  /* The form: rows of (firm, metric, period, value), sent as the CSV an
   * agent reads (its English header) through the same check and apply as a
   * file, so there is no second way in on the daemon. */
  const lastMonth = (() => {
    const [y, m] = new Intl.DateTimeFormat('en-CA', { timeZone: state.tz, year: 'numeric', month: '2-digit' }).format(new Date()).split('-').map(Number);
    return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`;
  })();
  const opts = (list, sel) => list.map((x) => `<option value="${esc(x)}" ${x === sel ? 'selected' : ''}>${esc(x)}</option>`).join('');
  const addRow = () => {
    const tr = document.createElement('tr');
    tr.innerHTML = `<td class="n"></td>
      <td>${st.any_firm ? '<input name="firm" size="10" required>' : `<select name="firm">${opts(st.firms.map((f) => f.id))}</select>`}</td>
      <td><select name="metric">${opts(st.metrics || [], 'revenue')}</select></td>
      <td><input name="period" value="${lastMonth}" pattern="\\d{4}-\\d{2}" size="8" required></td>
      <td><input name="value" inputmode="decimal" size="14" required></td>
      <td><button type="button" class="rm" data-testid="form-remove">${t('remove_row')}</button></td>`;
    tr.querySelector('.rm').addEventListener('click', () => { tr.remove(); renumber(); stale(); });
    $('#figform tbody').appendChild(tr);
    renumber();
    stale();
  };
  /* a change to the form after its check makes that check's confirm stale: check again */
  const stale = () => { if (pending && pending.form) { pending = null; $('#confirm')?.remove(); } };
  const renumber = () => $('#figform tbody').querySelectorAll('tr').forEach((tr, i) => { tr.cells[0].textContent = i + 1; tr.dataset.row = i + 1; });
  const csvField = (x) => (/[",\r\n]/.test(x) ? `"${x.replace(/"/g, '""')}"` : x);
  const formCsv = () => 'firm,metric,period,value\r\n' + [...$('#figform tbody').querySelectorAll('tr')]
    .map((tr) => ['firm', 'metric', 'period', 'value'].map((k) => csvField(tr.querySelector(`[name="${k}"]`).value.trim())).join(',') + '\r\n').join('');
  $('#addrow').addEventListener('click', addRow);
  addRow();
  $('#figform').addEventListener('input', stale);
  $('#figform').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!$('#figform tbody tr')) return;
    $('#upresult').innerHTML = `<p class="muted">${t('checking')}</p>`;
    const bytes = new TextEncoder().encode(formCsv());
    try {
      const d = await post('check', 'form.csv', bytes);
      pending = d.error ? null : { name: 'form.csv', bytes, seq: d.seq, form: true };
      show(Object.assign(d, { form: true }), false);
    } catch (e) { pending = null; show({ error: e.message, form: true }, false); }
  });
  $('#upform').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target.elements.file.files[0];
    if (!f) return;
    $('#upresult').innerHTML = `<p class="muted">${t('checking')}</p>`;
    const bytes = await f.arrayBuffer();
    try {
      const d = await post('check', f.name, bytes);
      pending = d.error ? null : { name: f.name, bytes, seq: d.seq };
      show(d, false);
    } catch (e) { pending = null; show({ error: e.message }, false); }
  });
}

/* The alert history (the "history" command): every published transition,
 * acknowledgement and silence, filtered by time, cluster, rule and firm. */
async function pageHistory(q) {
  const params = new URLSearchParams(q.replace(/^\?/, ''));
  const keys = ['since', 'until', 'cluster', 'rule', 'firm'];
  const args = new URLSearchParams();
  keys.forEach((k) => { if (params.get(k)) args.set(k, params.get(k)); });
  args.set('limit', '500');
  const [d, ov] = await Promise.all([api('cmd/history?' + args.toString()), api('cmd/clusters')]);
  state.tz = d.timezone || state.tz;
  const clusters = (ov.clusters || []).map((c) => c.id);
  const v = $('#view');
  v.innerHTML = `<h1>${t('history')}</h1>
    <form id="hfilter" class="toolbar" data-testid="history-filter">
      <label>${t('since')} <input name="since" value="${esc(params.get('since') || '')}" placeholder="2022-06-01 / 7d" size="12"></label>
      <label>${t('until')} <input name="until" value="${esc(params.get('until') || '')}" placeholder="2022-06-30" size="12"></label>
      <label>${t('cluster')} <select name="cluster"><option value="">${t('all')}</option>${clusters.map((c) => `<option ${params.get('cluster') === c ? 'selected' : ''}>${esc(c)}</option>`).join('')}</select></label>
      <label>${t('rule')} <input name="rule" value="${esc(params.get('rule') || '')}" size="16"></label>
      <label>${t('firm')} <input name="firm" value="${esc(params.get('firm') || '')}" size="10"></label>
      <button type="submit" data-testid="history-apply">${t('filter')}</button>
      <span class="muted" data-testid="history-matched">${d.matched} ${t('matched')}</span>
    </form>
    <div class="scroll"><table data-testid="history"><thead><tr><th>#</th><th>${t('since')}</th><th>${t('kind')}</th><th>${t('alert_id')}</th><th>${t('state')}</th>
      <th>${t('severity')}</th><th>${t('summary')}</th><th>${t('who')}</th><th>${t('note')}</th></tr></thead><tbody>
      ${d.entries.map((e) => `<tr data-kind="${esc(e.kind)}"><td>${e.id}</td><td>${esc(fmtTime(e.ts_ms))}</td><td>${esc(t('k_' + e.kind))}</td>
        <td>${esc(e.alert_id ?? [e.rule, e.cluster, e.firm].filter(Boolean).join(':'))}</td><td>${e.state ? esc(t(e.state === 'firing' ? 'firing_s' : e.state)) : ''}</td>
        <td class="sev-${esc(e.severity ?? '')}">${e.severity ? esc(t(e.severity)) : ''}</td><td class="summary">${esc(e.summary ?? '')}</td>
        <td>${esc(e.who ?? '')}</td><td class="summary">${esc(e.note ?? '')}</td></tr>`).join('') || `<tr><td colspan="9" class="muted">${t('none')}</td></tr>`}
    </tbody></table></div>`;
  $('#hfilter').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = new URLSearchParams();
    keys.forEach((k) => { const x = ev.target.elements[k].value.trim(); if (x) f.set(k, x); });
    location.hash = '#/history' + (f.toString() ? '?' + f.toString() : '');
  });
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
    else if (parts[0] === 'history') await pageHistory(q);
    else if (parts[0] === 'upload' || isFirmLogin()) await pageUpload();
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
  if (!isFirmLogin()) connectEvents();
}

main();
