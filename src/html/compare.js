// pacer compare page: for each timing family, both runs' percentiles on one chart (the base
// blue, the new run orange; x on a scale of nines: 50, 90, 99, 99.9), then the table of figures
// with each change and its verdict, drawn from the comparison JSON in #report-data. Strings
// from the JSON enter the document as text nodes only; each chart records what it drew
// (data-state, data-series, data-points) for a headless browser's DOM dump to be checked.
(() => {
  'use strict';
  const D = JSON.parse(document.getElementById('report-data').textContent);
  const { C, num, obj, human, el, sv } = PacerCommon;
  const text = PacerCommon.scalar;
  const curves = obj(D.curves) ? D.curves : {};
  const figures = (Array.isArray(D.figures) ? D.figures : []).filter(obj);
  const side = (s) => (obj(s) ? s : {});
  const nines = (q) => -Math.log10(1 - q / 100);

  const charts = [];
  function chart(name, c) {
    const node = el('figure', { class: 'chart', 'data-chart': name },
      el('figcaption', {}, name, el('span', { class: 'note' }, 'percentiles of both runs')));
    const plot = el('div', { class: 'plot' });
    node.append(plot);
    const series = [
      { name: 'base', color: C.blue, pts: Array.isArray(c.base) ? c.base : [] },
      { name: 'new', color: C.orange, pts: Array.isArray(c.new) ? c.new : [] },
    ].map((s) => ({ ...s, pts: s.pts.filter((p) => Array.isArray(p) && num(p[0]) && num(p[1]) && p[0] > 0 && p[0] < 100) }));
    charts.push(() => {
      plot.textContent = '';
      const all = series.flatMap((s) => s.pts.map((p) => p[1]));
      if (!all.length) {
        plot.append(el('div', { class: 'nodata' }, 'no data'));
        node.setAttribute('data-state', 'no-data');
        return;
      }
      plot.append(el('div', { class: 'legend' }, ...series.map((s) => el('span', {},
        el('i', { style: 'border-color:' + s.color }), s.name))));
      const W = Math.max(260, Math.round(plot.clientWidth || 540)), H = 230;
      const M = { l: 60, r: 14, t: 12, b: 26 }, pw = W - M.l - M.r, ph = H - M.t - M.b;
      const xlo = nines(1), xhi = nines(99.9);
      const hi = Math.max(...all) * 1.05 || 1;
      const X = (q) => M.l + pw * Math.min(1, Math.max(0, (nines(q) - xlo) / (xhi - xlo)));
      const Y = (v) => M.t + ph * (1 - Math.min(1, Math.max(0, v / hi)));
      const svg = sv('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
      for (let k = 0; k <= 4; k++) {
        const v = (hi * k) / 4;
        sv('line', { class: 'grid', x1: M.l, x2: W - M.r, y1: Y(v).toFixed(1), y2: Y(v).toFixed(1) }, svg);
        sv('text', { x: M.l - 6, y: Y(v) + 4, 'text-anchor': 'end' }, svg).textContent = human(v);
      }
      for (const q of [50, 90, 99, 99.9]) {
        sv('text', { x: X(q), y: H - 8, 'text-anchor': 'middle' }, svg).textContent = 'p' + q;
      }
      sv('line', { class: 'base', x1: M.l, x2: W - M.r, y1: M.t + ph, y2: M.t + ph }, svg);
      let drawn = 0;
      for (const s of series) {
        if (!s.pts.length) continue;
        const d = s.pts.map(([q, v], j) => `${j ? 'L' : 'M'}${X(q).toFixed(1)},${Y(v).toFixed(1)}`).join('');
        sv('path', { d, fill: 'none', stroke: s.color, 'stroke-width': 2, 'data-series': s.name,
          'stroke-linejoin': 'round' }, svg);
        for (const [q, v] of s.pts) {
          const c = sv('circle', { class: 'pt', cx: X(q).toFixed(1), cy: Y(v).toFixed(1), r: 2, fill: s.color }, svg);
          sv('title', {}, c).textContent = `${s.name} p${q}: ${human(v)}`;
          drawn += 1;
        }
      }
      plot.append(svg);
      node.setAttribute('data-series', String(series.filter((s) => s.pts.length).length));
      node.setAttribute('data-points', String(drawn));
      node.setAttribute('data-state', 'drawn');
    });
    return node;
  }

  const out = [el('h1', {}, 'pacer compare')];
  const b = side(D.base), n = side(D.new);
  out.push(el('p', { class: 'target' }, 'base: ', text(b.path)), el('p', { class: 'target' }, 'new: ', text(n.path)));
  out.push(el('p', { class: 'meta' }, `compared from ${text(D.source)}`));
  const held = (Array.isArray(D.fail_if) ? D.fail_if : []).filter((c) => obj(c) && c.holds === true);
  if (held.length) out.push(el('p', { class: 'banner' }, '--fail-if held: ' + held.map((c) => text(c.expression)).join(', ')));
  out.push(el('h2', {}, 'Both runs'), el('div', { class: 'charts' },
    ...Object.entries(curves).filter(([, c]) => obj(c)).map(([name, c]) => chart(name, c))));

  const show = (v, unit) => (unit === 's' ? human(v) : text(v));
  const rows = figures.map((f) => el('tr', { 'data-verdict': text(f.verdict) },
    el('td', {}, text(f.figure)), el('td', {}, show(f.base, f.unit)), el('td', {}, show(f.new, f.unit)),
    el('td', {}, num(f.change) ? (f.change < 0 ? '−' : '+') + show(Math.abs(f.change), f.unit) : '–'),
    el('td', {}, num(f.change_relative) ? (100 * f.change_relative).toFixed(1) + '%' : '–'),
    el('td', {}, text(f.verdict)), el('td', { class: 'text' }, text(f.why))));
  out.push(el('h2', {}, 'Figures'), el('div', { class: 'scroll', 'data-table': 'figures' }, el('table', { class: 'wide' },
    el('thead', {}, el('tr', {}, ...['figure', 'base', 'new', 'change', '%', 'verdict', 'why']
      .map((h) => el('th', h === 'why' ? { class: 'text' } : {}, h)))),
    el('tbody', {}, ...rows))));

  PacerCommon.show(out, () => charts.forEach((draw) => draw()));
})();
