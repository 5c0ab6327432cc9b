/**
 * The script the report page runs after chart.js: reads the chart specs embedded as JSON, adds
 * the callbacks JSON can't carry (UTC labels on time axes, run notes in tooltips) and draws each
 * chart. It is static text (no data is ever spliced into it), so its CSP hash never changes with
 * the data, and a chart that fails is reported in the page and the console without stopping the
 * others. `window.__chartsRendered` counts the charts drawn, for the browser test and for anyone
 * checking a report by hand.
 */
export const PAGE_SCRIPT = `
(function () {
  'use strict';
  var rendered = 0;
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function utc(ms) {
    var d = new Date(ms);
    if (isNaN(d.getTime())) return String(ms);
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' +
      pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes());
  }
  function shortUtc(ms) {
    var d = new Date(ms);
    return pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' + pad(d.getUTCHours()) + ':00';
  }
  function fail(canvas, error) {
    console.error('chart ' + canvas.id + ' failed: ' + (error && error.message ? error.message : error));
    var note = document.createElement('p');
    note.className = 'chart-error';
    note.textContent = 'This chart could not be drawn: ' + (error && error.message ? error.message : error);
    canvas.parentNode.insertBefore(note, canvas);
  }
  var specsElement = document.getElementById('report-charts');
  var specs = specsElement ? JSON.parse(specsElement.textContent || '[]') : [];
  if (typeof Chart === 'undefined') {
    console.error('chart.js did not load');
    window.__chartsRendered = 0;
    return;
  }
  specs.forEach(function (spec) {
    var canvas = document.getElementById(spec.id);
    if (!canvas) { console.error('no canvas for chart ' + spec.id); return; }
    try {
      var config = spec.config;
      var options = config.options || (config.options = {});
      var plugins = options.plugins || (options.plugins = {});
      var tooltip = plugins.tooltip || (plugins.tooltip = {});
      var callbacks = tooltip.callbacks || (tooltip.callbacks = {});
      callbacks.label = function (ctx) {
        var raw = ctx.raw;
        if (raw && typeof raw === 'object' && typeof raw.note === 'string') return raw.note;
        return undefined;
      };
      if (spec.xAxis === 'time') {
        var x = options.scales && options.scales.x;
        if (x) {
          x.ticks = x.ticks || {};
          x.ticks.maxRotation = 0;
          x.ticks.autoSkipPadding = 16;
          x.ticks.callback = function (value) { return shortUtc(value); };
        }
        callbacks.title = function (items) {
          return items.length > 0 ? utc(items[0].parsed.x) + ' UTC' : '';
        };
      }
      new Chart(canvas, config);
      canvas.setAttribute('data-rendered', 'true');
      rendered++;
    } catch (error) {
      fail(canvas, error);
    }
  });
  window.__chartsRendered = rendered;
})();
`;
