// pacer sweep page: the knee, latency against the asked rate, achieved against asked, errors
// against asked, and the table of steps, drawn from the sweep JSON in #report-data. As on the
// report page, every string from the JSON enters the document as a text node, and each chart
// records what it drew (data-state, data-points: one per step drawn) for a headless browser's
// DOM dump to be checked.
(() => {
  'use strict';
  const S = JSON.parse(document.getElementById('report-data').textContent);
  const { SVGNS, C, num, obj, human, el, sv } = PacerCommon;
  const rate = (v) => (num(v) ? v.toFixed(1) + ' /s' : '–');
  const text = PacerCommon.scalar;

  const cfg = obj(S.config) ? S.config : {};
  const sw = obj(cfg.sweep) ? cfg.sweep : {};
  const rows = (Array.isArray(S.table) ? S.table : []).filter((r) => obj(r) && num(r.asked_qps));
  const knee = obj(S.knee) && num(S.knee.qps) ? S.knee.qps : null;
  const llm = rows.some((r) => 'time_to_first_token_p50' in r);

  // An axis from 0 to about `hi` in steps of 1, 2 or 5 × 10^k; `f` scales values for labels.
  function axis(hi, f, unit) {
    const top = hi > 0 ? hi * f : 1;
    let step = Math.pow(10, Math.floor(Math.log10(top / 4)));
    const r = top / 4 / step;
    step *= r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10;
    const ticks = [];
    for (let v = 0; v <= top + step * 1e-9; v += step) ticks.push(v);
    if (ticks[ticks.length - 1] < top) ticks.push(ticks[ticks.length - 1] + step);
    const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    return { max: ticks[ticks.length - 1] / f, ticks: ticks.map((v) => [v / f, v.toFixed(digits) + unit]) };
  }
  function timeAxis(hi) {
    const [f, u] = hi < 1e-3 ? [1e6, 'µs'] : hi < 1 ? [1e3, 'ms'] : [1, 's'];
    return axis(hi, f, u);
  }

  const charts = [];
  // A chart of series over the asked rate: series [{name, color, dash, get(row)}], y axis from
  // `ys(max value)`, `show` for hover values; `diagonal` draws y = x (for achieved vs asked).
  function chart(id, title, note, series, ys, show, diagonal) {
    const node = el('figure', { class: 'chart', 'data-chart': id },
      el('figcaption', {}, title, el('span', { class: 'note' }, note)));
    const plot = el('div', { class: 'plot' });
    node.append(plot);
    charts.push(() => {
      plot.textContent = '';
      const pts = series.map((s) => rows.map((r) => [r.asked_qps, s.get(r)]).filter(([, v]) => num(v)));
      const all = pts.flat().map(([, v]) => v);
      if (!rows.length || !all.length) {
        plot.append(el('div', { class: 'nodata' }, 'no data', el('br'),
          el('small', {}, rows.length ? 'no step has a value' : 'no step ran')));
        node.setAttribute('data-state', 'no-data');
        return;
      }
      plot.append(el('div', { class: 'legend' }, ...series.map((s) => el('span', {},
        el('i', { class: s.dash ? 'dash' : '', style: 'border-color:' + s.color }), s.name)),
        knee !== null ? el('span', {}, el('i', { class: 'dash', style: 'border-color:currentColor' }), 'knee') : null));
      const xHi = Math.max(...rows.map((r) => r.asked_qps), ...(diagonal ? all : []));
      const xs = axis(xHi, 1, '/s');
      const y = ys(Math.max(...all, diagonal ? xHi : 0));
      const W = Math.max(260, Math.round(plot.clientWidth || 540)), H = 230;
      const M = { l: 60, r: 14, t: 12, b: 26 }, pw = W - M.l - M.r, ph = H - M.t - M.b;
      const X = (v) => M.l + pw * Math.min(1, Math.max(0, v / xs.max));
      const Y = (v) => M.t + ph * (1 - Math.min(1, Math.max(0, v / y.max)));
      const svg = sv('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
      for (const [v, t] of y.ticks) {
        sv('line', { class: 'grid', x1: M.l, x2: W - M.r, y1: Y(v).toFixed(1), y2: Y(v).toFixed(1) }, svg);
        sv('text', { x: M.l - 6, y: Y(v) + 4, 'text-anchor': 'end' }, svg).textContent = t;
      }
      let right = -Infinity;
      for (const [v, t] of xs.ticks) {
        if (X(v) - t.length * 3.3 < right + 6) continue;
        right = X(v) + t.length * 3.3;
        sv('text', { x: X(v), y: H - 8, 'text-anchor': 'middle' }, svg).textContent = t;
      }
      sv('line', { class: 'base', x1: M.l, x2: W - M.r, y1: M.t + ph, y2: M.t + ph }, svg);
      if (diagonal) {
        sv('line', { class: 'mark', x1: X(0), y1: Y(0), x2: X(xs.max), y2: Y(xs.max) }, svg);
      }
      if (knee !== null) {
        sv('line', { class: 'mark knee', x1: X(knee).toFixed(1), x2: X(knee).toFixed(1), y1: M.t, y2: M.t + ph }, svg);
        sv('text', { class: 'marktext', x: X(knee) + 3, y: M.t + 10 }, svg).textContent = `knee ${rate(knee)}`;
      }
      series.forEach((s, i) => {
        const d = pts[i].map(([x, v], j) => `${j ? 'L' : 'M'}${X(x).toFixed(1)},${Y(v).toFixed(1)}`).join('');
        sv('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 2,
          'stroke-dasharray': s.dash ? '5 4' : 'none', 'stroke-linejoin': 'round' }, svg);
        for (const [x, v] of pts[i]) {
          const r = rows.find((row) => row.asked_qps === x);
          // A step that failed its checks is an open point.
          const failed = r && r.pass === false;
          const c = sv('circle', { class: failed ? 'pt failed' : 'pt', cx: X(x).toFixed(1), cy: Y(v).toFixed(1),
            r: failed ? 3.5 : 3, fill: failed ? 'none' : s.color, stroke: s.color, 'stroke-width': 1.5 }, svg);
          sv('title', {}, c).textContent = `step ${text(r && r.step)}: asked ${rate(x)}\n${s.name}: ${show(v)}`
            + (r && r.pass === false ? '\nfailed its checks' : '');
        }
      });
      plot.append(svg);
      node.setAttribute('data-points', String(pts.reduce((n, p) => n + p.length, 0)));
      node.setAttribute('data-state', 'drawn');
    });
    return node;
  }

  // ---- page ---------------------------------------------------------------------------------
  const out = [el('h1', {}, 'pacer sweep')];
  out.push(el('p', { class: 'target' }, el('span', { class: 'method' }, text(cfg.method || 'GET')), text(cfg.url)));
  const bits = [];
  if (num(sw.step_duration) && rows.length) bits.push(`${rows.length} steps of ${text(sw.step_duration)} s`);
  if (num(cfg.num_workers)) bits.push(`${cfg.num_workers} connections`);
  if (num(sw.probe_duration)) bits.push(`probe ${text(sw.probe_duration)} s`);
  if (num(cfg.timeout)) bits.push(`timeout ${text(cfg.timeout)} s`);
  out.push(el('p', { class: 'meta' }, bits.join(' · ')));
  if (S.interrupted) out.push(el('p', { class: 'banner' }, 'This sweep was interrupted: the table shows the steps measured before the signal.'));
  if (typeof S.stopped === 'string') out.push(el('p', { class: 'banner' }, S.stopped));
  if (cfg.warning) out.push(el('p', { class: 'banner' }, text(cfg.warning)));

  const passed = rows.filter((r) => r.pass === true).length;
  const tile = (k, v, s, bad) => el('div', { class: 'tile' + (bad ? ' bad' : '') },
    el('div', { class: 'k' }, k), el('div', { class: 'v' }, v), s ? el('div', { class: 's' }, s) : null);
  const peak = obj(S.probe) && num(S.probe.peak) ? S.probe.peak : null;
  out.push(el('div', { class: 'tiles', 'data-table': 'knee' },
    tile('Knee', knee !== null ? rate(knee) : 'none', obj(S.knee) && typeof S.knee.note === 'string' ? S.knee.note : null, knee === null),
    tile('Probe peak', peak !== null ? rate(peak) : '–', peak !== null ? 'closed loop' : 'rates given'),
    tile('Steps passed', `${passed} of ${rows.length}`, null, passed < rows.length)));
  if (typeof S.rule === 'string') out.push(el('p', { class: 'note' }, S.rule.charAt(0).toUpperCase() + S.rule.slice(1) + '.'));

  const figs = [
    chart('latency-vs-rate', 'Response time against the asked rate',
      'p50 and p99 of each step, and p99 from the intended send time (it counts the wait for a '
      + 'connection past the capacity); open points failed their checks',
      [{ name: 'p50', color: C.blue, get: (r) => r.response_time_p50 },
        { name: 'p99', color: C.orange, get: (r) => r.response_time_p99 },
        { name: 'corrected p99', color: C.red, dash: true, get: (r) => r.corrected_response_time_p99 }], timeAxis, human),
    chart('achieved-vs-asked', 'Achieved rate against the asked rate', 'the dashed diagonal is a step that kept up',
      [{ name: 'achieved', color: C.blue, get: (r) => r.achieved_qps },
        { name: 'goodput', color: C.green, dash: true, get: (r) => r.goodput }], (hi) => axis(hi, 1, '/s'), rate, true),
    chart('errors-vs-rate', 'Error rate against the asked rate', 'errors and requests never sent, as a share of each step',
      [{ name: 'error rate', color: C.red, get: (r) => (num(r.error_rate) ? 100 * r.error_rate : null) }],
      (hi) => axis(Math.max(hi, 1), 1, '%'), (v) => v.toFixed(2) + '%'),
  ];
  if (llm) {
    figs.push(chart('ttft-vs-rate', 'Time to first token against the asked rate', 'p50 and p99 of each step',
      [{ name: 'p50', color: C.blue, get: (r) => r.time_to_first_token_p50 },
        { name: 'p99', color: C.orange, get: (r) => r.time_to_first_token_p99 }], timeAxis, human));
    figs.push(chart('tpot-vs-rate', 'Time per output token against the asked rate', 'p50 and p99 of each step',
      [{ name: 'p50', color: C.blue, get: (r) => r.time_per_output_token_p50 },
        { name: 'p99', color: C.orange, get: (r) => r.time_per_output_token_p99 }], timeAxis, human));
  }
  out.push(el('h2', {}, 'Against the rate'), el('div', { class: 'charts' }, ...figs));

  const head = ['step', 'asked', 'achieved', 'p50', 'p99', 'corrected p99'];
  if (llm) head.push('TTFT p50', 'TTFT p99', 'TPOT p50', 'TPOT p99');
  head.push('errors', 'goodput', 'result');
  const body = rows.map((r) => {
    const failed = (Array.isArray(r.checks) ? r.checks : []).filter((c) => obj(c) && c.pass === false)
      .map((c) => `${text(c.expression)} (got ${text(c.value)})`);
    const limited = typeof r.generator_limited === 'string' ? ` [pacer was generator-limited: ${r.generator_limited}]` : '';
    const result = (r.interrupted ? 'interrupted (not counted)' : r.pass ? 'ok' : 'FAIL ' + failed.join(', ')) + limited;
    const cells = [text(r.step), rate(r.asked_qps), rate(r.achieved_qps), human(r.response_time_p50),
      human(r.response_time_p99), human(r.corrected_response_time_p99)];
    if (llm) cells.push(human(r.time_to_first_token_p50), human(r.time_to_first_token_p99),
      human(r.time_per_output_token_p50), human(r.time_per_output_token_p99));
    cells.push(num(r.error_rate) ? (100 * r.error_rate).toFixed(2) + '%' : '–', rate(r.goodput));
    return el('tr', r.asked_qps === knee ? { class: 'knee' } : {},
      ...cells.map((c) => el('td', {}, c)), el('td', { class: 'text' }, result));
  });
  out.push(el('h2', {}, 'Steps'), el('div', { class: 'scroll', 'data-table': 'steps' }, el('table', { class: 'wide' },
    el('thead', {}, el('tr', {}, ...head.map((h) => el('th', h === 'result' ? { class: 'text' } : {}, h)))),
    el('tbody', {}, ...body))));
  if (!rows.length) out.push(el('p', { class: 'note' }, 'no step ran'));
  out.push(el('p', { class: 'note' }, 'Each step\'s full report is in the JSON of this sweep (steps).'));

  const settings = Object.entries(cfg).map(([k, v]) => el('tr', {}, el('td', {}, k),
    el('td', {}, obj(v) || Array.isArray(v) ? el('pre', {}, JSON.stringify(v, null, 2)) : text(v))));
  out.push(el('h2', {}, 'Settings'), el('div', { class: 'scroll', 'data-table': 'settings' },
    el('table', { class: 'kv wide' }, el('tbody', {}, ...settings))));

  PacerCommon.show(out, () => charts.forEach((draw) => draw()));
})();
