// On every page: times in the reader's zone, confirmations before irreversible actions, a progress
// indicator while a form is on its way, and live regions that refresh when something changed.
(function () {
  'use strict';

  // -- times: <time datetime="...Z" data-utc>2026-11-25 14:03:07 UTC</time> in the reader's time zone,
  //    the UTC instant kept in the hover title (records and the audit trail stay UTC on the server)
  const pad = (n) => String(n).padStart(2, '0');

  function zoneName(date) {
    const part = new Intl.DateTimeFormat('en', { timeZoneName: 'short' }).formatToParts(date)
      .find((p) => p.type === 'timeZoneName');
    return part ? part.value : '';
  }

  function localTimes(root) {
    root.querySelectorAll('time[data-utc]').forEach((el) => {
      const date = new Date(el.getAttribute('datetime'));
      if (Number.isNaN(date.getTime())) return;
      const utc = el.dataset.utcText || el.textContent.trim();
      el.dataset.utcText = utc;
      el.title = utc;
      el.textContent = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} `
        + `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())} ${zoneName(date)}`;
    });
  }

  // -- confirmations: a submit button with data-confirm asks first, in a dialog that also takes (or shows)
  //    the reason the server records; the form's own reason field gets what was typed there
  let confirmed = null;

  function confirmDialog() {
    let dialog = document.getElementById('confirm-dialog');
    if (dialog) return dialog;
    dialog = document.createElement('dialog');
    dialog.id = 'confirm-dialog';
    dialog.setAttribute('aria-labelledby', 'confirm-h');
    dialog.innerHTML = '<form method="dialog" class="stack">'
      + '<h2 id="confirm-h"></h2><p id="confirm-text"></p>'
      + '<label>Reason (required) <textarea id="confirm-reason" aria-required="true" maxlength="500" rows="2"></textarea></label>'
      + '<p class="field-error" id="confirm-error" role="alert" hidden>Give a reason: it is recorded in the audit trail.</p>'
      + '<div class="row"><button type="button" id="confirm-cancel">Cancel</button>'
      + '<button type="submit" class="danger" id="confirm-ok"></button></div></form>';
    document.body.appendChild(dialog);
    dialog.querySelector('#confirm-cancel').addEventListener('click', () => dialog.close());
    return dialog;
  }

  function askFirst(form, submitter) {
    const dialog = confirmDialog();
    const reasonField = form.querySelector('[name=reason]');
    const reason = dialog.querySelector('#confirm-reason');
    const error = dialog.querySelector('#confirm-error');
    dialog.querySelector('#confirm-h').textContent = submitter.dataset.confirm;
    dialog.querySelector('#confirm-text').textContent = submitter.dataset.confirmDetail || '';
    dialog.querySelector('#confirm-ok').textContent = submitter.dataset.confirmButton
      || submitter.textContent.trim() || 'Confirm';
    reason.value = reasonField ? reasonField.value : '';
    error.hidden = true;
    reason.removeAttribute('aria-invalid');
    dialog.querySelector('form').onsubmit = (event) => {
      if (!reason.value.trim()) {
        event.preventDefault();
        error.hidden = false;
        reason.setAttribute('aria-invalid', 'true');
        reason.setAttribute('aria-describedby', 'confirm-error');
        reason.focus();
        return;
      }
      if (reasonField) reasonField.value = reason.value.trim();
      confirmed = submitter;
      form.requestSubmit(submitter);
    };
    dialog.showModal();
    reason.focus();
  }

  // -- progress: a form on its way marks the page busy; the indicator shows after a second (CSS delay)
  function showBusy(form, submitter) {
    document.body.dataset.busy = 'true';
    form.setAttribute('aria-busy', 'true');
    if (submitter) submitter.classList.add('busy');
    let indicator = document.getElementById('progress');
    if (!indicator) {
      indicator = document.createElement('div');
      indicator.id = 'progress';
      indicator.setAttribute('role', 'status');
      indicator.innerHTML = '<span class="spinner" aria-hidden="true"></span> Working…';
      document.body.appendChild(indicator);
    }
  }

  document.addEventListener('submit', (event) => {
    const form = event.target;
    const submitter = event.submitter;
    if (submitter && submitter.dataset.confirm && confirmed !== submitter) {
      event.preventDefault();
      askFirst(form, submitter);
      return;
    }
    confirmed = null;
    // a page script may have kept the form (the signing dialog opens first): then nothing is on its way
    setTimeout(() => { if (!event.defaultPrevented && form.method !== 'dialog') showBusy(form, submitter); }, 0);
  });
  window.addEventListener('pageshow', () => { delete document.body.dataset.busy; });  // back button

  // -- live regions: the page's [data-live] parts are fetched again when /changes moves; not while the
  //    reader is working inside one (focus there): the next poll tries again
  const live = document.querySelectorAll('[data-live][id]');
  const POLL_MS = Number(document.body.dataset.pollMs) || 5000;
  let marker = document.body.dataset.marker || null;  // what the page shows (webapp/live.py)
  // the page's own fetches: not the user's activity, so an open page still times out (webapp/guard.py)
  const BACKGROUND = { 'X-Gmpflow-Live': '1' };

  function signedOut(reply) {
    if (reply.status !== 401) return false;
    window.location.reload();  // the sign-in page, with the reason, instead of a screen that goes on showing
    return true;
  }

  function busyInside() {
    const active = document.activeElement;
    return document.body.dataset.busy === 'true'
      || Array.from(live).some((region) => region.contains(active) && active !== region);
  }

  async function refresh() {
    const page = await fetch(window.location.href, { credentials: 'same-origin', headers: { Accept: 'text/html', ...BACKGROUND } });
    if (signedOut(page) || !page.ok) return;  // the next poll tries again
    const fresh = new DOMParser().parseFromString(await page.text(), 'text/html');
    marker = fresh.body.dataset.marker || marker;  // read before the fresh parts were
    live.forEach((region) => {
      const next = fresh.getElementById(region.id);
      if (next) region.innerHTML = next.innerHTML;
      localTimes(region);
    });
    const status = document.getElementById('live-status');
    if (status) status.textContent = 'Updated.';
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  }

  async function poll() {
    try {
      const reply = await fetch('/changes', { credentials: 'same-origin', headers: { Accept: 'application/json', ...BACKGROUND } });
      if (signedOut(reply)) return;
      if (reply.ok) {
        const now = (await reply.json()).marker;
        if (marker === null) marker = now;
        else if (now !== marker && !busyInside()) await refresh();
      }
    } catch (error) {
      // offline for a moment: the next poll tries again
    }
    setTimeout(poll, POLL_MS);
  }

  localTimes(document);
  if (live.length) {
    const status = document.createElement('p');
    status.id = 'live-status';
    status.className = 'sr-only';
    status.setAttribute('role', 'status');
    document.body.appendChild(status);
    poll();
  }
}());
