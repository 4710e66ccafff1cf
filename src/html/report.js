// pacer report page: draws the header, tiles, charts and tables from the report JSON in
// #report-data. Every string from the report enters the document as a text node (append,
// textContent), never as markup. Each chart records what it drew in data-* attributes
// (data-state, data-points, data-bars) so that a headless browser's DOM dump can be checked.
(() => {
  'use strict';
  const R = JSON.parse(document.getElementById('report-data').textContent);
  const { SVGNS, C, num, obj, human, scalar, el, sv } = PacerCommon;

  // ---- values -------------------------------------------------------------------------------
  const maxOf = (xs) => xs.reduce((m, x) => (x > m ? x : m), -Infinity);
  const sumOf = (xs) => xs.reduce((s, x) => s + x, 0);

  const fixed = (v, d) => (num(v) ? v.toLocaleString('en-US',
    { minimumFractionDigits: d, maximumFractionDigits: d }) : '–');
  const int = (v) => fixed(v, 0);
  const perSec = (v) => (num(v) ? fixed(v, 1) + ' /s' : '–');
  const pct = (a, b) => (num(a) && num(b) && b > 0 ? (100 * a / b).toFixed(1) + '%' : '–');
  function bytes(n) {
    if (!num(n)) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i += 1; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
  }
  const errorLabel = (k) => (/^\d{3}$/.test(k) ? 'HTTP ' + k : k);

  // ---- elements -----------------------------------------------------------------------------
  function svText(parent, x, y, text, attrs) {
    sv('text', Object.assign({ x, y }, attrs || {}), parent).textContent = text;
  }
  // A hover title: the SVG <title> child every browser shows as a tooltip.
  const hover = (node, text) => { sv('title', {}, node).textContent = text; };
  function table(head, rows, cls) {
    return el('div', { class: 'scroll' }, el('table', cls ? { class: cls } : {},
      head ? el('thead', {}, el('tr', {}, ...head.map((h) => el('th', {}, h)))) : null,
      el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map(cell))))));
  }
  // A string cell is a number-like right-aligned value; an element cell is text that may wrap.
  const cell = (c) => (c instanceof Node ? el('td', { class: 'text' }, c) : el('td', {}, c));
  // A report value as a cell: objects and lists as indented JSON.
  const value = (v) => (obj(v) || Array.isArray(v) ? el('pre', {}, JSON.stringify(v, null, 2)) : el('span', {}, scalar(v)));

  // ---- scales -------------------------------------------------------------------------------
  // Ticks at 1, 2 or 5 × 10^k covering [lo, hi], about n of them; `integer` for counts.
  function nice(lo, hi, n, integer) {
    if (!(hi > lo)) hi = lo + (lo > 0 ? lo : 1);
    let step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
    const r = (hi - lo) / n / step;
    step *= r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10;
    if (integer) step = Math.max(1, step);
    const a = Math.floor(lo / step + 1e-9), b = Math.ceil(hi / step - 1e-9);
    const ticks = [];
    for (let i = a; i <= b; i += 1) ticks.push(i * step);
    const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    return { min: a * step, max: b * step, ticks, label: (v) => v.toFixed(digits) };
  }
  // A linear axis over values of one kind: 'time' (seconds shown in µs/ms/s), 'clock' (seconds
  // since the start shown in s/m/h), 'rate' (per second) or 'count'.
  function linear(lo, hi, kind, n) {
    let f = 1, unit = '';
    if (kind === 'time') {
      const m = Math.max(Math.abs(lo), Math.abs(hi));
      [f, unit] = m < 1e-3 ? [1e6, 'µs'] : m < 1 ? [1e3, 'ms'] : [1, 's'];
    } else if (kind === 'clock') {
      [f, unit] = hi >= 7200 ? [1 / 3600, 'h'] : hi >= 180 ? [1 / 60, 'm'] : [1, 's'];
    } else if (kind === 'rate') unit = '/s';
    const t = nice(lo * f, hi * f, n, kind === 'count');
    return { min: t.min / f, max: t.max / f, frac: null,
      ticks: t.ticks.map((v) => [v / f, t.label(v) + unit]) };
  }
  // Short labels for log ticks (1µs, 20ms, 1s), unlike human()'s fixed decimals.
  function shortTime(v) {
    const [f, u] = v < 1e-3 ? [1e6, 'µs'] : v < 1 ? [1e3, 'ms'] : [1, 's'];
    return String(+(v * f).toPrecision(3)) + u;
  }
  function logAxis(lo, hi) {
    const a = Math.floor(Math.log10(lo) + 1e-9), b = Math.ceil(Math.log10(hi) - 1e-9);
    const ticks = [];
    for (let d = a; d <= b; d += 1) {
      for (const m of (b - a <= 3 ? [1, 2, 5] : [1])) {
        const v = m * Math.pow(10, d);
        if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push([v, shortTime(v)]);
      }
    }
    return { min: lo, max: hi, log: true, ticks };
  }
  const frac = (s, v) => (s.log
    ? (Math.log10(v) - Math.log10(s.min)) / (Math.log10(s.max) - Math.log10(s.min))
    : (v - s.min) / (s.max - s.min));

  // ---- chart frames -------------------------------------------------------------------------
  const H = 230, M = { l: 60, r: 14, t: 12, b: 26 };
  // An SVG sized to the box in real pixels (so its text is real 11px, on a phone too) with a
  // y grid, x ticks and their labels; returns the coordinate maps.
  function frame(box, xs, ys) {
    const W = Math.max(260, Math.round(box.clientWidth || 540));
    const pw = W - M.l - M.r, ph = H - M.t - M.b;
    const svg = sv('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
    const X = (v) => M.l + pw * Math.min(1, Math.max(0, frac(xs, v)));
    const Y = (v) => M.t + ph * (1 - Math.min(1, Math.max(0, frac(ys, v))));
    const g = sv('g', { class: 'axes' }, svg);
    for (const [v, t] of ys.ticks) {
      const y = Y(v).toFixed(1);
      sv('line', { class: 'grid', x1: M.l, x2: W - M.r, y1: y, y2: y }, g);
      svText(g, M.l - 6, +y + 4, t, { 'text-anchor': 'end' });
    }
    let lastRight = -Infinity;
    for (const [v, t] of xs.ticks) {
      const x = X(v);
      // Skip a label that would overlap the previous one on a narrow screen.
      if (x - t.length * 3.3 < lastRight + 6) continue;
      lastRight = x + t.length * 3.3;
      sv('line', { class: 'base', x1: x, x2: x, y1: M.t + ph, y2: M.t + ph + 4 }, g);
      svText(g, x, H - 8, t, { 'text-anchor': 'middle' });
    }
    sv('line', { class: 'base', x1: M.l, x2: W - M.r, y1: M.t + ph, y2: M.t + ph }, g);
    box.append(svg);
    return { svg, X, Y, top: M.t, bottom: M.t + ph, width: W };
  }
  function legend(items) {
    return el('div', { class: 'legend' }, ...items.map((s) => el('span', {},
      el('i', { class: s.box ? 'box' : s.dash ? 'dash' : '', style: (s.box ? 'background:' : 'border-color:') + s.color }),
      s.name)));
  }
  function noData(fig, why) {
    fig.plot.append(el('div', { class: 'nodata' }, 'no data', el('br'), el('small', {}, why)));
    fig.node.setAttribute('data-state', 'no-data');
  }

  // ---- the timeline -------------------------------------------------------------------------
  const interval = num(R.config && R.config.interval) && R.config.interval > 0 ? R.config.interval : 1;
  // Entries with their span made explicit; null when the report has no timeline.
  const timeline = Array.isArray(R.timeline) ? R.timeline.filter(obj).map((e, i) => {
    const start = num(e.start) ? e.start : i * interval;
    const dur = num(e.duration) && e.duration > 0 ? e.duration : interval;
    return { e, start, end: start + dur, dur };
  }) : null;
  function timelineMissing(fig) {
    if (!timeline) { noData(fig, 'this report has no timeline'); return true; }
    if (!timeline.length) { noData(fig, 'the timeline has no intervals'); return true; }
    return false;
  }
  const span = (t) => `${fixed(t.start, t.start % 1 ? 1 : 0)}s – ${fixed(t.end, t.end % 1 ? 1 : 0)}s`;
  // A rate per interval only over a whole interval: the run's last one is cut short by its end,
  // and a count over a sliver of it (the responses that came in its last milliseconds) would
  // draw as a crash to 0 or a spike. Intervals past the schedule with nothing sent or scheduled
  // have no rate either. A run shorter than one interval keeps its one entry.
  const whole = (t) => t.dur >= interval * 0.999 || timeline.length === 1;
  const rateOf = (n, t) => (num(n) && whole(t) ? n / t.dur : null);
  const idle = (e) => !(e.sent > 0) && !(e.scheduled > 0);

  // One column per interval: a transparent full-height rect carrying the interval's hover title
  // (so every interval is one drawn, inspectable point), behind whatever the chart draws.
  function hits(f, fig, lines) {
    const g = sv('g', {}, f.svg);
    timeline.forEach((t, j) => {
      const r = sv('rect', { class: 'hit', x: f.X(t.start), y: f.top,
        width: Math.max(0.5, f.X(t.end) - f.X(t.start)), height: f.bottom - f.top }, g);
      hover(r, [span(t), ...lines(t.e, j)].join('\n'));
    });
    fig.node.setAttribute('data-points', String(timeline.length));
    fig.node.setAttribute('data-state', 'drawn');
  }

  // Lines over time; series: [{name, color, dash, get(entry, t) -> number|null}]; kind: y axis.
  function lineChart(fig, series, kind, show) {
    if (timelineMissing(fig)) return;
    const vals = series.map((s) => timeline.map((t) => { const v = s.get(t.e, t); return num(v) ? v : null; }));
    const all = vals.flat().filter((v) => v !== null);
    if (!all.length) { noData(fig, 'no interval has a value'); return; }
    fig.plot.append(legend(series));
    const f = frame(fig.plot, linear(0, timeline[timeline.length - 1].end, 'clock', 6),
      linear(0, maxOf(all), kind, 4));
    hits(f, fig, (e, j) => series.map((s, i) => `${s.name}: ${vals[i][j] === null ? '–' : show(vals[i][j])}`));
    series.forEach((s, i) => {
      let d = '';
      vals[i].forEach((v, j) => {
        if (v === null) return;
        const t = timeline[j];
        const prev = j > 0 ? vals[i][j - 1] : null;
        d += `${prev === null ? 'M' : 'L'}${f.X((t.start + t.end) / 2).toFixed(1)},${f.Y(v).toFixed(1)}`;
      });
      sv('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 2,
        'stroke-dasharray': s.dash ? '5 4' : 'none', 'stroke-linejoin': 'round' }, f.svg);
      // Dots where a reader can tell them apart, and always for a value with no neighbour.
      vals[i].forEach((v, j) => {
        const alone = (j === 0 || vals[i][j - 1] === null) && (j === vals[i].length - 1 || vals[i][j + 1] === null);
        if (v === null || !(alone || timeline.length <= 60)) return;
        const t = timeline[j];
        sv('circle', { cx: f.X((t.start + t.end) / 2).toFixed(1), cy: f.Y(v).toFixed(1), r: 2.5, fill: s.color }, f.svg);
      });
    });
  }

  // Stacked bars per interval; series: [{name, color, get(entry)}].
  function barChart(fig, series, total) {
    if (timelineMissing(fig)) return;
    const v = (s, e) => (num(s.get(e)) && s.get(e) > 0 ? s.get(e) : 0);
    const top = maxOf(timeline.map((t) => sumOf(series.map((s) => v(s, t.e)))));
    fig.plot.append(legend(series.map((s) => Object.assign({ box: true }, s))));
    const f = frame(fig.plot, linear(0, timeline[timeline.length - 1].end, 'clock', 6),
      linear(0, Math.max(top, 1), 'count', 4));
    hits(f, fig, (e) => [...series.map((s) => `${s.name}: ${int(v(s, e))}`), ...total(e)]);
    for (const t of timeline) {
      let acc = 0;
      const x0 = f.X(t.start), x1 = f.X(t.end), gap = x1 - x0 > 4 ? 1 : 0;
      for (const s of series) {
        const n = v(s, t.e);
        if (!n) continue;
        sv('rect', { x: (x0 + gap).toFixed(1), width: Math.max(0.5, x1 - x0 - 2 * gap).toFixed(1),
          y: f.Y(acc + n).toFixed(1), height: Math.max(0.5, f.Y(acc) - f.Y(acc + n)).toFixed(1),
          fill: s.color, 'pointer-events': 'none' }, f.svg);
        acc += n;
      }
    }
    if (top <= 0) fig.plot.append(el('div', { class: 'note' }, 'None in any interval.'));
  }

  // ---- histograms ---------------------------------------------------------------------------
  // Buckets [{from, to, count}] as bars on a log axis when they span a decade or more (latency
  // spreads multiplicatively), else on a linear one; marks: [[label, seconds]] drawn as rules.
  function histChart(fig, buckets, noun, marks) {
    if (!obj(R.histograms)) { noData(fig, 'this report has no histograms'); return; }
    const bs = (Array.isArray(buckets) ? buckets : []).filter((b) => obj(b) && num(b.from) && num(b.count) && b.count > 0)
      // An open-ended last bucket (no finite `to`) is drawn one bucket wide.
      .map((b) => ({ from: b.from, count: b.count,
        to: num(b.to) && b.to > b.from ? b.to : (b.from > 0 ? b.from * 1.26 : 1e-6) }));
    if (!bs.length) { noData(fig, 'no samples'); return; }
    const total = sumOf(bs.map((b) => b.count));
    const left = (b) => (b.from > 0 ? b.from : b.to / 1.26);
    const lo = Math.min(...bs.map(left)), hi = maxOf(bs.map((b) => b.to));
    const log = hi / lo >= 9.99; // a decade, give or take the rounding of its edges
    const xs = log ? logAxis(lo, hi) : linear(Math.min(...bs.map((b) => b.from)), hi, 'time', 5);
    const shown = marks.filter(([, v]) => num(v) && v >= xs.min && v <= xs.max);
    const what = `${noun} per bucket (${int(total)} in all${log ? ', log scale' : ''})`;
    fig.plot.append(legend([{ name: what, color: C.sky, box: true },
      ...shown.map(([n]) => ({ name: n, color: 'currentColor', dash: true }))]));
    const f = frame(fig.plot, xs, linear(0, maxOf(bs.map((b) => b.count)), 'count', 4));
    const g = sv('g', {}, f.svg);
    for (const b of bs) {
      const x0 = f.X(log ? left(b) : b.from), x1 = f.X(b.to);
      const r = sv('rect', { class: 'bar', x: x0.toFixed(1), width: Math.max(1, x1 - x0 - (x1 - x0 > 4 ? 1 : 0)).toFixed(1),
        y: f.Y(b.count).toFixed(1), height: Math.max(2, f.bottom - f.Y(b.count)).toFixed(1), fill: C.sky }, g);
      hover(r, `${human(b.from)} – ${human(b.to)}: ${int(b.count)} (${pct(b.count, total)})`);
    }
    shown.forEach(([n, v], i) => {
      const x = f.X(v);
      sv('line', { class: 'mark', x1: x.toFixed(1), x2: x.toFixed(1), y1: f.top, y2: f.bottom }, f.svg);
      // One label per line of text, so close percentiles do not overwrite each other; on the
      // left of the rule near the right edge.
      const right = x > f.width * 0.75;
      svText(f.svg, x + (right ? -3 : 3), f.top + 10 + 13 * i, `${n} ${human(v)}`,
        { class: 'marktext', 'text-anchor': right ? 'end' : 'start' });
    });
    fig.node.setAttribute('data-bars', String(bs.length));
    fig.node.setAttribute('data-state', 'drawn');
  }

  // ---- page ---------------------------------------------------------------------------------
  const cfg = obj(R.config) ? R.config : {};
  const llm = 'mean_time_to_first_token' in R || 'output_tokens' in R;
  const H2 = (t) => el('h2', {}, t);

  function header() {
    const out = [el('h1', {}, 'pacer report')];
    out.push(el('p', { class: 'target' }, el('span', { class: 'method' }, scalar(cfg.method || 'GET')), scalar(cfg.url)));
    const rate = cfg.qps === 'max' ? 'max rate (closed loop)' : `${scalar(cfg.qps)} req/s`;
    const bits = [rate, `${scalar(cfg.duration)} s`, `${scalar(cfg.num_workers)} workers`,
      `timeout ${scalar(cfg.timeout)} s`];
    if (cfg.arrival) bits.push(`${scalar(cfg.arrival)} arrivals`);
    const model = obj(cfg.fireworks_payload) ? cfg.fireworks_payload.model : null;
    if (model) bits.push(`model ${scalar(model)}`);
    out.push(el('p', { class: 'meta' }, bits.join(' · ')));
    if (R.interrupted) {
      out.push(el('p', { class: 'banner' }, 'This run was interrupted: the report covers what ran before the signal.'));
    }
    if (cfg.warning) out.push(el('p', { class: 'banner' }, scalar(cfg.warning)));
    // The measurement-health verdict: a generator-limited run says so above everything else.
    const health = obj(R.health) ? R.health : null;
    if (health && typeof health.verdict === 'string' && health.verdict !== 'ok') {
      const why = Array.isArray(health.reasons) ? health.reasons.map(scalar).join('; ') : '';
      out.push(el('p', { class: 'banner', 'data-banner': 'health' },
        `Measurement health: ${health.verdict}${why ? ': ' + why : ''}. The generator, not only the target, limited this run.`));
    }
    if (typeof R.scheduling === 'string' && R.scheduling !== 'normal' && !R.scheduling.startsWith('realtime')) {
      out.push(el('p', { class: 'banner' }, 'Scheduling: ' + R.scheduling));
    }
    return out;
  }

  function tiles() {
    const tile = (k, v, s, bad) => el('div', { class: 'tile' + (bad ? ' bad' : '') },
      el('div', { class: 'k' }, k), el('div', { class: 'v' }, v), s ? el('div', { class: 's' }, s) : null);
    const t = [
      tile('Requests', int(R.total_requests), num(R.elapsed) ? `in ${R.elapsed.toFixed(2)} s` : null),
      tile('Successes', int(R.successes), pct(R.successes, R.total_requests)),
      tile('Errors', int(R.errors), pct(R.errors, R.total_requests), R.errors > 0),
      tile('Achieved rate', perSec(R.achieved_qps), num(cfg.qps) ? `asked ${scalar(cfg.qps)} /s` : null),
      tile('Response time', human(R.response_time_p50), `p50 · p99 ${human(R.response_time_p99)}`),
    ];
    if (llm) {
      t.push(tile('Time to first token', human(R.time_to_first_token_p50),
        `p50 · p99 ${human(R.time_to_first_token_p99)}`));
      t.push(tile('Output tokens', int(R.output_tokens),
        num(R.output_tokens_per_second) ? perSec(R.output_tokens_per_second) : null));
    }
    return el('div', { class: 'tiles' }, ...t);
  }

  // Charts are drawn after they are in the document, at its width, and again when it changes.
  const charts = [];
  function chart(id, title, note, draw) {
    const node = el('figure', { class: 'chart', 'data-chart': id },
      el('figcaption', {}, title, note ? el('span', { class: 'note' }, note) : null));
    const plot = el('div', { class: 'plot' });
    node.append(plot);
    charts.push({ node, plot, draw });
    return node;
  }
  const pcts = (prefix, ps) => ps.map(([p, color, dash]) => ({ name: p, color, dash, get: (e) => e[`${prefix}_${p}`] }));

  function overTime() {
    const c = [
      chart('response-time', 'Response time over time', 'percentiles of the requests that completed in each interval',
        (f) => lineChart(f, pcts('response_time', [['p50', C.blue], ['p90', C.orange], ['p99', C.red]]), 'time', human)),
      chart('rate', 'Request rate', 'achieved (sent per second) against scheduled',
        // Scheduled last, so its dashes show where achieved lies on it.
        (f) => lineChart(f, [
          { name: 'achieved', color: C.blue, get: (e, t) => (!whole(t) || idle(e) ? null
            : num(e.achieved_qps) ? e.achieved_qps : rateOf(e.sent, t)) },
          { name: 'scheduled', color: C.grey, dash: true, get: (e, t) => (idle(e) ? null : rateOf(e.scheduled, t)) },
        ], 'rate', perSec)),
      chart('errors', 'Errors over time', 'requests that ended in an error, and requests never sent, per interval',
        (f) => barChart(f, [
          { name: 'errors', color: C.red, get: (e) => e.errors },
          { name: 'not sent', color: C.grey, get: (e) => e.not_sent },
        ], (e) => [`completed: ${int(e.completed)}`, `successes: ${int(e.successes)}`])),
      chart('dispatch-delay', 'Dispatch delay over time',
        'p99 of intended send time to actual send: how well the schedule was kept',
        (f) => lineChart(f, pcts('dispatch_delay', [['p99', C.pink]]), 'time', human)),
    ];
    if (llm) {
      c.push(chart('ttft', 'Time to first token over time', 'percentiles of the first tokens that arrived in each interval',
        (f) => lineChart(f, pcts('time_to_first_token', [['p50', C.blue], ['p99', C.red]]), 'time', human)));
      c.push(chart('tokens', 'Output tokens per second', null,
        (f) => lineChart(f, [{ name: 'output tokens /s', color: C.green, get: (e, t) => rateOf(e.output_tokens, t) }],
          'rate', perSec)));
    }
    return [H2('Over time'), el('div', { class: 'charts' }, ...c)];
  }

  function distributions() {
    const h = obj(R.histograms) ? R.histograms : {};
    const families = [['response_time', 'Response time', 'responses']];
    if (llm) {
      families.push(['time_to_first_token', 'Time to first token', 'streams'],
        ['inter_token_latency', 'Inter-token latency', 'token gaps'],
        ['time_per_output_token', 'Time per output token', 'streams']);
    }
    const c = families.map(([key, title, noun]) => chart(`hist-${key.replace(/_/g, '-')}`, `${title} distribution`, null,
      (f) => histChart(f, h[key], noun, [['p50', R[`${key}_p50`]], ['p99', R[`${key}_p99`]]])));
    return [H2('Distributions'), el('div', { class: 'charts' }, ...c)];
  }

  // Every timing family in the report (a `mean_X` key), the known ones in a reading order.
  // The order is pacer's list of families (crate::metric), emitted into the page as PacerMetrics.
  const ORDER = (typeof PacerMetrics !== 'undefined' && Array.isArray(PacerMetrics)
    ? PacerMetrics.map((m) => m && m.name) : []).filter((n) => typeof n === 'string');
  // Token means are counts, not timings.
  const COUNT_MEANS = new Set(['mean_output_tokens', 'mean_input_tokens']);
  const families = Object.keys(R).filter((k) => k.startsWith('mean_') && !COUNT_MEANS.has(k)).map((k) => k.slice(5))
    .sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99));
  const first = (keys) => keys.find((k) => k in R) || keys[0];
  function timings() {
    const cols = [['mean', (f) => `mean_${f}`], ['std', (f) => `std_${f}`], ['p50', (f) => `${f}_p50`],
      ['p90', (f) => `${f}_p90`], ['p97', (f) => `${f}_p97`], ['p99', (f) => `${f}_p99`],
      // Names a report may give these two (the first present wins).
      ['p99.9', (f) => first([`${f}_p99_9`, `${f}_p999`, `${f}_p99.9`])],
      ['max', (f) => first([`max_${f}`, `${f}_max`])]]
      .filter(([, key]) => families.some((f) => key(f) in R));
    const rows = families.map((f) => [f.replace(/_/g, ' '), ...cols.map(([, key]) => human(R[key(f)]))]);
    if (!rows.length) return [H2('Timings'), el('p', { class: 'note' }, 'no data')];
    return [H2('Timings'), el('div', { 'data-table': 'timings' }, table(['timing', ...cols.map(([n]) => n)], rows, 'wide')),
      el('p', { class: 'note' }, 'Response time runs from dispatch to the last byte; corrected response time '
        + 'from the intended send time, so it includes any wait for the schedule or a free connection.')];
  }

  const SHOWN = new Set(['config', 'timeline', 'histograms', 'error_counts', 'errors_status', 'interrupted', 'thresholds', 'stages',
    'total_requests', 'successes', 'errors', 'elapsed', 'achieved_qps', 'output_tokens', 'mean_output_tokens',
    'output_tokens_per_second', 'output_tokens_source', 'input_tokens', 'mean_input_tokens', 'input_tokens_source',
    'total_token_throughput', 'bytes_received', 'connections_opened', 'scheduling', 'tls_handshakes',
    'token_gaps_coalesced']);
  const inFamily = (k) => families.some((f) => k === `mean_${f}` || k === `std_${f}` || k.startsWith(`${f}_p`)
    || k === `max_${f}` || k === `${f}_max`);
  function counts() {
    const rows = [['requests', int(R.total_requests)], ['successes', int(R.successes)], ['errors', int(R.errors)],
      ['elapsed', num(R.elapsed) ? R.elapsed.toFixed(3) + ' s' : '–'], ['achieved rate', perSec(R.achieved_qps)],
      ['connections opened', int(R.connections_opened)], ['bytes received', bytes(R.bytes_received)]];
    const tls = R.tls_handshakes;
    if (obj(tls)) rows.push(['TLS handshakes', `${int(tls.full)} full, ${int(tls.resumed)} resumed`]);
    if (llm) rows.push(['output tokens', int(R.output_tokens)], ['mean output tokens', fixed(R.mean_output_tokens, 1)],
      ['output tokens per second', fixed(R.output_tokens_per_second, 1)]);
    if (llm && 'output_tokens_source' in R) rows.push(['output tokens from', scalar(R.output_tokens_source)]);
    // Token gaps whose two events came in one read: one chunk, so not measured (health flags > 1%).
    const co = R.token_gaps_coalesced;
    if (obj(co) && num(co.of) && co.of > 0) rows.push(['token gaps read together',
      el('span', { 'data-field': 'token_gaps_coalesced', class: co.count > 0.01 * co.of ? 'fail' : '' },
        `${int(co.count)} of ${int(co.of)} (${pct(co.count, co.of)}): one chunk each, not measured`)]);
    if (llm && num(R.input_tokens)) rows.push(['input tokens', int(R.input_tokens)],
      ['mean input tokens', fixed(R.mean_input_tokens, 1)], ['input tokens from', scalar(R.input_tokens_source)],
      ['total tokens per second', fixed(R.total_token_throughput, 1)]);
    if ('scheduling' in R) rows.push(['scheduling', scalar(R.scheduling)]);
    // Fields this page does not know (a newer pacer's) are still shown, as they are.
    for (const [k, v] of Object.entries(R)) if (!SHOWN.has(k) && !inFamily(k)) rows.push([k, value(v)]);

    const errs = Object.entries(obj(R.error_counts) ? R.error_counts : {})
      .filter(([, n]) => num(n)).sort((a, b) => b[1] - a[1]);
    const errRows = errs.map(([k, n]) => [el('span', {}, errorLabel(k)), int(n), pct(n, R.total_requests)]);
    const errBox = el('div', { 'data-table': 'errors' }, H2('Errors by kind'), errs.length
      ? table(['kind', 'count', 'share'], errRows, 'wide')
      : el('p', { class: 'note' }, R.errors > 0 ? 'The report does not break the errors down.' : 'No errors.'));
    const countBox = el('div', { 'data-table': 'counts' }, H2('Requests'), table(null, rows, 'kv wide'));
    return el('div', { class: 'cols' }, countBox, errBox);
  }

  // Thresholds (--threshold): each expression, the value it read, pass or fail.
  function thresholds() {
    const list = (Array.isArray(R.thresholds) ? R.thresholds : []).filter(obj);
    if (!list.length) return [];
    const rows = list.map((t) => [scalar(t.expression), num(t.value) ? String(+t.value.toPrecision(6)) : value(t.value),
      el('span', { class: t.pass ? 'pass' : 'fail' }, t.pass ? 'pass' : 'FAIL')]);
    return [H2('Thresholds'), el('div', { 'data-table': 'thresholds' }, table(['threshold', 'measured', 'result'], rows, 'wide'))];
  }

  // Stages (--stages): one row per stage, from the report's per-stage summaries.
  function stages() {
    const list = (Array.isArray(R.stages) ? R.stages : []).filter(obj);
    if (!list.length) return [];
    const rows = list.map((st) => [scalar(st.stage), scalar(st.qps), num(st.duration) ? st.duration + ' s' : '–',
      int(st.total_requests), perSec(st.achieved_qps), int(st.errors), human(st.response_time_p50), human(st.response_time_p99)]);
    return [H2('Stages'), el('div', { 'data-table': 'stages' },
      table(['stage', 'asked /s', 'length', 'requests', 'achieved', 'errors', 'p50', 'p99'], rows, 'wide'))];
  }

  function settings() {
    const rows = Object.entries(cfg).map(([k, v]) => [k, value(v)]);
    const body = rows.length ? table(null, rows, 'kv wide') : el('p', { class: 'note' }, 'no data');
    return [H2('Settings'), el('div', { 'data-table': 'settings' }, body)];
  }

  function drawAll() {
    for (const c of charts) {
      c.plot.textContent = '';
      for (const a of ['data-state', 'data-points', 'data-bars']) c.node.removeAttribute(a);
      c.draw({ node: c.node, plot: c.plot });
    }
  }
  PacerCommon.show([...header(), tiles(), ...overTime(), ...distributions(), ...timings(), ...stages(),
    ...thresholds(), counts(), ...settings()], drawAll);
})();
