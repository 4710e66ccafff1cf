// What both pages (the report's and the sweep's) draw with: value tests, the text of a value,
// and element makers. Placed before the page's own script, in the same script element; every
// string from the JSON goes into the document as text (append, textContent), never as markup.
const PacerCommon = (() => {
  'use strict';
  const SVGNS = 'http://www.w3.org/2000/svg';
  // A palette readable by people with any colour vision (Okabe and Ito).
  const C = { blue: '#0072b2', orange: '#e69f00', red: '#d55e00', green: '#009e73',
    grey: '#8c8c8c', pink: '#cc79a7', sky: '#56b4e9' };
  const num = (v) => typeof v === 'number' && isFinite(v);
  const obj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

  // Seconds in the unit a person reads best, as report::human writes them.
  function human(s) {
    if (!num(s)) return '–';
    const a = Math.abs(s);
    if (a < 1e-3) return (s * 1e6).toFixed(1) + 'µs';
    if (a < 1) return (s * 1e3).toFixed(2) + 'ms';
    return s.toFixed(3) + 's';
  }
  // Any JSON value as one line of text.
  function scalar(v) {
    if (v === null || v === undefined) return '–';
    if (typeof v === 'number') return String(+v.toPrecision(9));
    return typeof v === 'string' ? v : JSON.stringify(v);
  }

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    e.append(...kids.filter((k) => k !== null && k !== undefined));
    return e;
  }
  function sv(tag, attrs, parent) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (parent) parent.append(e);
    return e;
  }
  // Puts the page's nodes in #report, draws its charts at the page's width and again when the
  // width changes, then marks the page rendered (what a headless browser's check waits for).
  function show(nodes, drawAll) {
    const root = document.getElementById('report');
    root.textContent = '';
    root.append(...nodes);
    drawAll();
    let width = root.clientWidth, pending = 0;
    window.addEventListener('resize', () => {
      clearTimeout(pending);
      pending = setTimeout(() => { if (root.clientWidth !== width) { width = root.clientWidth; drawAll(); } }, 150);
    });
    document.body.setAttribute('data-rendered', 'ok');
  }
  return { SVGNS, C, num, obj, human, scalar, el, sv, show };
})();
