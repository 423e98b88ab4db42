/**
 * The live dashboard the service serves itself at `/dashboard`: a page, its script and its style,
 * with nothing fetched from anywhere else. Signing in keeps the API key in the tab's
 * sessionStorage; the page then reads `/v1/status` (breakers, the fallback rate, the privacy
 * budgets, the workers), lists the jobs, follows every change over `/v1/events` (Server-Sent Events read with
 * fetch, which can send the key, where EventSource cannot), shows a job's progress, quality,
 * fallback, backend and plot, and submits a file as a job. Everything from the API is written as
 * text (textContent), never as markup.
 */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>neurocluster</title>
<link rel="stylesheet" href="/dashboard/app.css">
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header><h1>neurocluster</h1><span id="who"></span><button id="signout" hidden>sign out</button></header>
<form id="signin">
  <label>API key <input name="apiKey" type="password" autocomplete="off" required></label>
  <button type="submit">sign in</button>
  <p id="signin-error" role="alert"></p>
</form>
<main id="app" hidden>
  <section id="status">
    <h2>Service</h2>
    <dl>
      <dt>jobs</dt><dd id="counts"></dd>
      <dt>fallback rate</dt><dd id="fallback-rate"></dd>
      <dt>breakers</dt><dd id="breakers"></dd>
      <dt>privacy budgets</dt><dd id="budgets"></dd>
      <dt>workers</dt><dd id="workers"></dd>
    </dl>
  </section>
  <section id="submit">
    <h2>Submit a job</h2>
    <form id="submit-form">
      <label>file <input name="file" type="file" required></label>
      <label>k <input name="k" type="number" min="1" value="3" required></label>
      <label>method <select name="method"><option>auto</option><option>hybrid</option><option>kmeans</option><option>esn</option><option>snn</option><option>lsm</option></select></label>
      <button type="submit">submit</button>
      <span id="submit-result" role="status"></span>
    </form>
  </section>
  <section id="jobs">
    <h2>Jobs</h2>
    <table><thead><tr><th>job</th><th>state</th><th>progress</th><th>method</th><th>backend</th><th>fallback</th><th>silhouette</th><th>created</th></tr></thead>
    <tbody id="job-rows"></tbody></table>
  </section>
  <section id="detail" hidden>
    <h2>Job <span id="detail-id"></span></h2>
    <pre id="detail-json"></pre>
    <img id="detail-plot" alt="cluster plot">
  </section>
</main>
</body>
</html>
`;

export const DASHBOARD_CSS = `body { font: 14px system-ui, sans-serif; margin: 0 1.5rem; color: #1b1f24; }
header { display: flex; gap: 1rem; align-items: baseline; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid #d0d7de; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: #f6f8fa; }
td.state-succeeded { color: #1a7f37; } td.state-failed { color: #cf222e; } td.state-running { color: #9a6700; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; }
dd { margin: 0; }
progress { width: 8rem; }
#detail-plot { max-width: 720px; display: block; }
#signin-error { color: #cf222e; }
pre { background: #f6f8fa; padding: 0.5rem; max-height: 20rem; overflow: auto; }
`;

export const DASHBOARD_JS = `'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const jobs = new Map();
  let key = sessionStorage.getItem('neurocluster.apiKey');
  let stream;

  const api = async (path, init = {}) => {
    const response = await fetch(path, { ...init, headers: { ...(init.headers || {}), authorization: 'Bearer ' + key } });
    if (!response.ok) {
      let message = response.status + ' ' + response.statusText;
      try { const body = await response.json(); message = body.error.code + ': ' + body.error.message; } catch {}
      const error = new Error(message); error.status = response.status; throw error;
    }
    return response;
  };

  const text = (el, value) => { el.textContent = value; return el; };
  const cell = (row, value, className) => { const td = text(document.createElement('td'), value); if (className) td.className = className; row.append(td); return td; };

  const render = () => {
    const body = $('job-rows');
    const sorted = [...jobs.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1)).slice(0, 100);
    body.replaceChildren(...sorted.map((job) => {
      const row = document.createElement('tr');
      row.dataset.id = job.id;
      row.dataset.state = job.state;
      cell(row, job.id.slice(0, 8));
      cell(row, job.state, 'state-' + job.state);
      const progress = cell(row, '');
      if (job.progress && job.state === 'running') {
        const bar = document.createElement('progress');
        bar.max = Math.max(1, job.progress.total); bar.value = job.progress.done;
        progress.append(bar, ' ' + job.progress.phase);
      } else if (job.progress) text(progress, job.progress.phase);
      const r = job.result || {};
      cell(row, r.method || '');
      cell(row, r.backend || '');
      cell(row, r.fallbackUsed === undefined ? '' : r.fallbackUsed ? 'yes' : 'no');
      cell(row, r.quality && r.quality.silhouette != null ? r.quality.silhouette.toFixed(3) : '');
      cell(row, new Date(job.createdAt).toLocaleTimeString());
      row.addEventListener('click', () => show(job.id));
      return row;
    }));
  };

  const show = async (id) => {
    const job = jobs.get(id);
    $('detail').hidden = false;
    text($('detail-id'), id);
    text($('detail-json'), JSON.stringify(job, null, 2));
    const img = $('detail-plot');
    img.hidden = true;
    if (job.state === 'succeeded') {
      const svg = await (await api(job.links.plot)).blob();
      if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
      img.src = URL.createObjectURL(svg);
      img.hidden = false;
    }
  };

  const status = async () => {
    const s = await (await api('/v1/status')).json();
    text($('counts'), Object.entries(s.jobs).map(([state, n]) => state + ' ' + n).join(', '));
    const f = s.fallback;
    text($('fallback-rate'), f.jobs === 0 ? 'no finished jobs yet' : (100 * f.rate).toFixed(1) + '% of the last ' + f.jobs + ' jobs');
    text($('breakers'), s.breakers.length === 0 ? 'none' : s.breakers.map((b) => b.key + ': ' + b.state).join(', '));
    const w = s.workers;
    text($('workers'), w.where === 'threads'
      ? w.count + ' worker thread(s) in the service, ' + w.busy + ' busy'
      : w.count + ' worker(s) on the queue, ' + w.busy + ' task(s) running' + (w.list && w.list.length ? ': ' + w.list.map((x) => x.addr + ' (up ' + x.ageSeconds + ' s)').join(', ') : ''));
    text($('budgets'), s.budgets.length === 0 ? 'none charged' : s.budgets.map((b) => b.dataset + ': ' + b.remaining + ' of ' + b.epsilon + ' left').join('; '));
  };

  /** Follows /v1/events: one frame per change, each the job as GET /v1/jobs/:id gives it. */
  const follow = async () => {
    stream = new AbortController();
    const response = await api('/v1/events', { signal: stream.signal });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\\n\\n')) >= 0) {
        const frame = buffer.slice(0, end); buffer = buffer.slice(end + 2);
        const data = frame.split('\\n').find((l) => l.startsWith('data: '));
        if (!data) continue;
        const job = JSON.parse(data.slice(6));
        if (job.deleted) jobs.delete(job.id); else jobs.set(job.id, job);
        render();
        if (job.state === 'succeeded' || job.state === 'failed') status().catch(() => {});
      }
    }
  };

  const start = async () => {
    try {
      const page = await (await api('/v1/jobs?limit=100')).json();
      for (const job of page.jobs) jobs.set(job.id, job);
    } catch (error) {
      if (error.status === 401 || error.status === 403) { signOut(); text($('signin-error'), error.message); return; }
      throw error;
    }
    $('signin').hidden = true; $('app').hidden = false; $('signout').hidden = false;
    render();
    await status();
    setInterval(() => status().catch(() => {}), 5000);
    const again = () => follow().catch(() => {}).finally(() => setTimeout(again, 2000));
    again();
  };

  const signOut = () => {
    sessionStorage.removeItem('neurocluster.apiKey'); key = null;
    if (stream) stream.abort();
    $('signin').hidden = false; $('app').hidden = true; $('signout').hidden = true;
  };

  $('signin').addEventListener('submit', (event) => {
    event.preventDefault();
    key = new FormData(event.target).get('apiKey').trim();
    sessionStorage.setItem('neurocluster.apiKey', key);
    text($('signin-error'), '');
    start();
  });
  $('signout').addEventListener('click', signOut);
  $('submit-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = new FormData();
    body.append('options', JSON.stringify({ kmeans: { nClusters: Number(form.get('k')) }, engine: { method: form.get('method') } }));
    body.append('file', form.get('file'));
    try {
      const accepted = await (await api('/v1/jobs', { method: 'POST', body })).json();
      text($('submit-result'), 'accepted: ' + accepted.id);
    } catch (error) { text($('submit-result'), error.message); }
  });
  if (key) start();
})();
`;
